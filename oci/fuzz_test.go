package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzLoad loads arbitrary bytes as an image archive (OCI or docker-archive
// tar) into a fresh store: no panic, nothing written outside the store, no
// link or special file in it, every blob named by its own digest, and an
// index.json that still parses.
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, archive []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		s, err := Open(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		in := filepath.Join(base, "in.tar")
		if err := os.WriteFile(in, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = s.Load(context.Background(), in)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		names, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 2 || names[0].Name() != "in.tar" || names[1].Name() != "root" {
			t.Fatalf("load wrote beside the store: %v", names)
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case d.IsDir():
				if !slices.Contains([]string{".", "blobs", "blobs/sha256", "tmp"}, rel) && filepath.Dir(rel) != "tmp" {
					t.Errorf("unexpected dir %s in the store", rel)
				}
			case !d.Type().IsRegular():
				t.Errorf("%s in the store is a %v", rel, d.Type())
			case filepath.Dir(rel) == "blobs/sha256":
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Name() {
					t.Errorf("blob %s holds other bytes", d.Name())
				}
			case rel == "index.lock":
			case rel == indexFile || rel == layoutFile:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if !json.Valid(b) {
					t.Errorf("%s is not JSON: %q", rel, b)
				}
			case filepath.Dir(filepath.Dir(rel)) == "tmp" || filepath.Dir(rel) == "tmp":
			default:
				t.Errorf("unexpected file %s in the store", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
