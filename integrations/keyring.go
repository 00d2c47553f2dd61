package integrations

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Keyring seals the Datadog keys an integration carries before they are
// written to the integrations topic, with AES-256-GCM. Its first key seals;
// every key opens, so that an operator can put a new key first, keep the old
// one behind it until every record has been sealed again (the store does it
// when it starts), and then drop the old one.
type Keyring struct {
	keys []ringKey // keys[0] seals
}

type ringKey struct {
	id   string // first 8 hex digits of the key's SHA-256: names the key without revealing it
	aead cipher.AEAD
}

// Sealed is a key as it is stored: which ring key sealed it, and the nonce
// followed by the ciphertext.
type Sealed struct {
	KeyID string `json:"kid"`
	Box   string `json:"box"` // base64 of nonce || ciphertext
}

// ErrUnknownKeyID is returned when a record was sealed with a key the ring
// no longer has.
var ErrUnknownKeyID = errors.New("sealed with a key that PRISM_SECRETS_KEY does not hold")

// ParseKeyring reads keys written as base64 of 32 bytes each, separated by
// commas, white space or new lines (a file may hold one per line). The
// first seals. Errors name the position of the bad key, never its text.
func ParseKeyring(text string) (*Keyring, error) {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("no key: want base64 of 32 random bytes (openssl rand -base64 32)")
	}
	kr := &Keyring{}
	seen := map[string]bool{}
	for i, f := range fields {
		raw, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			raw, err = base64.RawStdEncoding.DecodeString(f)
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("key %d of %d: want base64 of exactly 32 bytes (openssl rand -base64 32)", i+1, len(fields))
		}
		k, err := newRingKey(raw)
		if err != nil {
			return nil, err
		}
		if seen[k.id] {
			return nil, fmt.Errorf("key %d of %d: given twice", i+1, len(fields))
		}
		seen[k.id] = true
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

func newRingKey(raw []byte) (ringKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return ringKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return ringKey{}, err
	}
	sum := sha256.Sum256(raw)
	return ringKey{id: hex.EncodeToString(sum[:4]), aead: aead}, nil
}

// PrimaryID names the key that seals.
func (k *Keyring) PrimaryID() string { return k.keys[0].id }

// Seal encrypts plain under the primary key. aad binds the box to where it
// is stored (the integration and the field), so that a box copied into
// another record does not open.
func (k *Keyring) Seal(plain, aad string) (Sealed, error) {
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(plain)+key.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	box := key.aead.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return Sealed{KeyID: key.id, Box: base64.StdEncoding.EncodeToString(box)}, nil
}

// Open decrypts s. The error never holds any of the plain text.
func (k *Keyring) Open(s Sealed, aad string) (string, error) {
	for _, key := range k.keys {
		if key.id != s.KeyID {
			continue
		}
		box, err := base64.StdEncoding.DecodeString(s.Box)
		if err != nil || len(box) < key.aead.NonceSize() {
			return "", errors.New("sealed key is damaged")
		}
		plain, err := key.aead.Open(nil, box[:key.aead.NonceSize()], box[key.aead.NonceSize():], []byte(aad))
		if err != nil {
			return "", errors.New("sealed key does not open: damaged, or sealed for another record")
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("key id %s: %w", s.KeyID, ErrUnknownKeyID)
}
