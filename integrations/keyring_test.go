package integrations

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

func TestKeyringSealsAndOpens(t *testing.T) {
	kr, err := ParseKeyring(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "0123456789abcdef0123456789abcdef"
	box, err := kr.Seal(secret, "dd_1/api_key")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(box.Box, secret) || box.KeyID != kr.PrimaryID() {
		t.Fatalf("box %+v", box)
	}
	got, err := kr.Open(box, "dd_1/api_key")
	if err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// A box moved to another record or field does not open.
	if _, err := kr.Open(box, "dd_2/api_key"); err == nil {
		t.Error("a box opened under another record's AAD")
	}
	// Two seals of the same key differ (random nonces).
	again, _ := kr.Seal(secret, "dd_1/api_key")
	if again.Box == box.Box {
		t.Error("two seals gave the same box")
	}
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	old, _ := ParseKeyring(oldKey)
	box, _ := old.Seal("key-a", "x")

	both, err := ParseKeyring(newK + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open(box, "x"); err != nil || got != "key-a" {
		t.Fatalf("the old key's box does not open with both keys: %v", err)
	}
	fresh, _ := both.Seal("key-a", "x")
	if fresh.KeyID == box.KeyID {
		t.Error("sealing does not use the first key")
	}
	onlyNew, _ := ParseKeyring(newK)
	if _, err := onlyNew.Open(box, "x"); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Open with the old key dropped = %v; want ErrUnknownKeyID", err)
	}
	// One key a line, as in a file.
	if kr, err := ParseKeyring(newK + "\n" + oldKey + "\n"); err != nil || len(kr.keys) != 2 {
		t.Errorf("file form: %v", err)
	}
}

func TestParseKeyringErrorsHideTheKey(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	for _, text := range []string{"", "not base64!", short, newKey(t) + "," + short} {
		_, err := ParseKeyring(text)
		if err == nil {
			t.Errorf("ParseKeyring(%q) accepted", text)
			continue
		}
		if text != "" && strings.Contains(err.Error(), text) || short != "" && strings.Contains(err.Error(), short) {
			t.Errorf("error shows the key: %v", err)
		}
	}
	k := newKey(t)
	if _, err := ParseKeyring(k + "," + k); err == nil {
		t.Error("a key given twice was accepted")
	}
}
