package ddfake

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// countingReader counts the body bytes as sent, for RequestRecord.WireBytes.
type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// drain reads what the client is still sending (bounded), so a refusal is
// read by the client rather than lost in a connection reset mid-upload.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, drainCap))
}

// readWire reads the body, refusing (over) more than max bytes. sizeHint
// (Content-Length, or -1) sizes the buffer up front, which matters for
// multi-megabyte bodies.
func readWire(r io.Reader, sizeHint, max int64, buf *bytes.Buffer) (b []byte, over bool, err error) {
	if sizeHint > 0 {
		buf.Grow(int(min(sizeHint, max) + 1))
	}
	_, err = buf.ReadFrom(io.LimitReader(r, max+1))
	if int64(buf.Len()) > max {
		return nil, true, nil
	}
	return buf.Bytes(), false, err
}

// contentEncoding returns the request's Content-Encoding, normalised, and
// whether allowed lists it. No header and "identity" both mean uncompressed.
func contentEncoding(header string, allowed ...string) (string, bool) {
	enc := strings.ToLower(strings.TrimSpace(header))
	if enc == "" || enc == "identity" {
		return "", true
	}
	for _, a := range allowed {
		if enc == a {
			return enc, true
		}
	}
	return enc, false
}

// inflate decompresses wire, refusing (over) output larger than max bytes;
// corrupt reports a body that is not valid in its encoding. Reading to the
// end makes gzip and zlib verify their checksums.
func inflate(gzipReaders *sync.Pool, enc string, wire []byte, max int64, buf *bytes.Buffer) (out []byte, over, corrupt bool) {
	var rd io.Reader
	switch enc {
	case "":
		return wire, int64(len(wire)) > max, false
	case "gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(wire))
		} else {
			err = zr.Reset(bytes.NewReader(wire))
		}
		if err != nil {
			return nil, false, true
		}
		defer gzipReaders.Put(zr)
		rd = zr
	case "deflate":
		// HTTP "deflate" is the zlib format (RFC 9110 section 8.4.1.2).
		zr, err := zlib.NewReader(bytes.NewReader(wire))
		if err != nil {
			return nil, false, true
		}
		defer zr.Close()
		rd = zr
	case "zstd1":
		// Streaming decode behind the LimitReader below bounds the output;
		// one goroutine because each request gets its own decoder.
		zr, err := zstd.NewReader(bytes.NewReader(wire), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, false, true
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, false, true
	}
	// Compressed bodies usually inflate several times; guessing saves copies.
	buf.Grow(int(min(int64(len(wire))*8, max) + 1))
	_, err := buf.ReadFrom(io.LimitReader(rd, max+1))
	if int64(buf.Len()) > max {
		return nil, true, false
	}
	if err != nil {
		return nil, false, true
	}
	return buf.Bytes(), false, false
}

// buffer returns an empty buffer for a request's body. In cheap mode it comes
// from a pool and goes back when the request is answered, since nothing of a
// body outlives its request there; at a benchmark's request rate fresh
// multi-megabyte buffers were most of the stand-in's own cost.
func (s *Server) buffer(st *reqState) *bytes.Buffer {
	if !s.cheap {
		return new(bytes.Buffer)
	}
	b, _ := s.bodyBufs.Get().(*bytes.Buffer)
	if b == nil {
		b = new(bytes.Buffer)
	}
	b.Reset()
	st.pooled = append(st.pooled, b)
	return b
}
