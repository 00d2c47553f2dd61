package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
)

// WatchTenantsFile loads the tenants file now and again whenever its
// content changes (checked every `every`; a file swapped by a secret store
// changes its mtime and size, an edit in place at least its hash), until
// ctx ends. A file that does not load is logged and the last good
// configuration stays in force. What changed is logged by SetTenants,
// without key values.
func (s *Sink) WatchTenantsFile(ctx context.Context, path string, every time.Duration) {
	WatchTenantsFile(ctx, path, every, s.log, s.SetTenants)
}

// WatchTenantsFile calls apply with the tenants file's entries whenever its
// content changes (checked every `every`), until ctx ends. The first check
// is made at once. A file that does not load is logged and apply is not
// called: the last good configuration stays in force.
func WatchTenantsFile(ctx context.Context, path string, every time.Duration, log *zap.Logger, apply func([]Tenant)) {
	if every <= 0 {
		every = 10 * time.Second
	}
	w := fileWatch{path: path, log: log, apply: apply}
	w.reload()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.reload()
		}
	}
}

// fileWatch is what was last seen of the file.
type fileWatch struct {
	path    string
	modTime time.Time
	size    int64
	sum     [sha256.Size]byte
	loaded  bool // sum is of a file that was applied
	failed  [sha256.Size]byte
	log     *zap.Logger
	apply   func([]Tenant)
}

func (w *fileWatch) reload() {
	s := w
	fi, err := os.Stat(w.path)
	if err != nil {
		s.log.Error("tenants file unreadable; keeping the last good configuration", zap.String("path", w.path), zap.Error(err))
		return
	}
	if w.loaded && fi.ModTime().Equal(w.modTime) && fi.Size() == w.size {
		// Unchanged by its metadata; the hash below still catches an edit
		// within the file system's mtime resolution on the next change.
		return
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		s.log.Error("tenants file unreadable; keeping the last good configuration", zap.String("path", w.path), zap.Error(err))
		return
	}
	sum := sha256.Sum256(data)
	w.modTime, w.size = fi.ModTime(), fi.Size()
	if w.loaded && bytes.Equal(sum[:], w.sum[:]) {
		return
	}
	ts, err := parseTenants(data)
	if err != nil {
		if sum != w.failed { // once per bad version, not every tick
			s.log.Error("tenants file rejected; keeping the last good configuration",
				zap.Error(fmt.Errorf("tenants file %s: %w", w.path, err)))
			w.failed = sum
		}
		return
	}
	s.log.Info("tenants file loaded", zap.String("path", w.path), zap.Int("tenants", len(ts)))
	w.apply(ts)
	w.sum, w.loaded = sum, true
}
