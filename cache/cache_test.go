package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (chown of build-context files)")
	}
}

// fullInputs sets every field of Inputs.
func fullInputs() Inputs {
	return Inputs{
		Version:     Version,
		Parent:      digest.FromString("parent"),
		Instruction: "RUN make -j4",
		Env:         []string{"PATH=/usr/bin:/bin", "A=1"},
		User:        "www",
		Workdir:     "/src",
		Shell:       []string{"/bin/sh", "-c"},
		Args:        map[string]string{"VERSION": "1.2", "DEBUG": "0"},
		Network:     "none",
		Sources:     digest.FromString("sources"),
		Extra:       map[string]string{"platform": "linux/amd64"},
	}
}

func TestKeyGolden(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "key.golden"))
	if err != nil {
		t.Fatal(err)
	}
	got := Key(fullInputs())
	if got.String() != strings.TrimSpace(string(want)) {
		t.Fatalf("Key(fullInputs()) = %s, testdata/key.golden has %s\n"+
			"Keys changed: bump Version if step semantics changed, then update the golden file.",
			got, strings.TrimSpace(string(want)))
	}
	if err := got.Validate(); err != nil || got.Algorithm() != digest.SHA256 {
		t.Fatalf("Key = %q: not a sha256 digest (%v)", got, err)
	}
}

func TestKeyVersionDefault(t *testing.T) {
	in := fullInputs()
	in.Version = ""
	if Key(in) != Key(fullInputs()) {
		t.Fatal("empty Version must mean the current Version")
	}
}

func TestKeyEveryFieldMatters(t *testing.T) {
	mutations := map[string]func(*Inputs){
		"Version":     func(in *Inputs) { in.Version = "builder.step.v0" },
		"Parent":      func(in *Inputs) { in.Parent = digest.FromString("other") },
		"Instruction": func(in *Inputs) { in.Instruction = "RUN make -j5" },
		"Env":         func(in *Inputs) { in.Env = []string{"A=1", "PATH=/usr/bin:/bin"} },
		"User":        func(in *Inputs) { in.User = "root" },
		"Workdir":     func(in *Inputs) { in.Workdir = "/" },
		"Shell":       func(in *Inputs) { in.Shell = []string{"/bin/bash", "-c"} },
		"Args":        func(in *Inputs) { in.Args["DEBUG"] = "1" },
		"Network":     func(in *Inputs) { in.Network = "" },
		"Sources":     func(in *Inputs) { in.Sources = "" },
		"Extra":       func(in *Inputs) { in.Extra = map[string]string{"platform": "linux/arm64"} },
	}
	fields := reflect.TypeFor[Inputs]()
	for i := range fields.NumField() {
		if _, ok := mutations[fields.Field(i).Name]; !ok {
			t.Errorf("Inputs.%s has no mutation in this test", fields.Field(i).Name)
		}
	}
	base := Key(fullInputs())
	seen := map[digest.Digest]string{base: "base"}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			in := fullInputs()
			mutate(&in)
			k := Key(in)
			if prev, dup := seen[k]; dup {
				t.Fatalf("changing %s gives the key of %s", name, prev)
			}
			seen[k] = name
		})
	}
}

func TestKeyNilEmptyAndMapOrder(t *testing.T) {
	empty := Inputs{Instruction: "RUN true", Env: []string{}, Shell: []string{},
		Args: map[string]string{}, Extra: map[string]string{}}
	zero := Inputs{Instruction: "RUN true"}
	if Key(empty) != Key(zero) {
		t.Error("nil and empty slices/maps must give the same key")
	}
	a := fullInputs()
	b := fullInputs()
	b.Args = map[string]string{}
	for _, k := range []string{"DEBUG", "VERSION"} { // other insertion order
		b.Args[k] = a.Args[k]
	}
	for range 20 { // map iteration order varies between runs
		if Key(a) != Key(b) {
			t.Fatal("map order changed the key")
		}
	}
}

func TestKeyNoAmbiguity(t *testing.T) {
	pairs := []struct {
		name string
		a, b Inputs
	}{
		{"invalid UTF-8", Inputs{Instruction: "RUN echo \xe9"}, Inputs{Instruction: "RUN echo \xe8"}},
		{"invalid vs U+FFFD", Inputs{Instruction: "RUN echo \xe9"}, Inputs{Instruction: "RUN echo \ufffd"}},
		{"NUL prefix", Inputs{User: "\x00" + "6Q=="}, Inputs{User: "\xe9"}},
		{"field boundary", Inputs{User: "a", Workdir: "b"}, Inputs{User: "ab"}},
		{"slice boundary", Inputs{Env: []string{"A=1", "B=2"}}, Inputs{Env: []string{"A=1B=2"}}},
		{"map key", Inputs{Args: map[string]string{"\xe9": "x"}}, Inputs{Args: map[string]string{"\xe8": "x"}}},
	}
	for _, p := range pairs {
		if Key(p.a) == Key(p.b) {
			t.Errorf("%s: distinct inputs share a key", p.name)
		}
	}
}

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	key := Key(fullInputs())
	if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}
	want := Record{
		Key:       key,
		Layer:     digest.FromString("blob"),
		LayerSize: 1234,
		MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		DiffID:    digest.FromString("tar"),
		Created:   "2024-01-02T03:04:05Z",
	}
	if err := s.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	if _, err := os.Stat(filepath.Join(s.root, "records", "sha256", key.Encoded())); err != nil {
		t.Fatalf("record not at its documented path: %v", err)
	}
	if left, _ := os.ReadDir(s.tmpDir()); len(left) != 0 {
		t.Fatalf("tmp/ not empty after Put: %v", left)
	}

	// Overwrite, and a record with no layer.
	empty := Record{Key: key, Created: want.Created}
	if err := s.Put(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, key); err != nil || got != empty {
		t.Fatalf("Get after overwrite = %+v, %v", got, err)
	}

	// Reopening keeps records.
	s2, err := Open(ctx, s.root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get(ctx, key); err != nil || got != empty {
		t.Fatalf("Get after reopen = %+v, %v", got, err)
	}
}

func TestCorruptRecordIsMiss(t *testing.T) {
	ctx := context.Background()
	key := Key(fullInputs())
	other := digest.FromString("other")
	cases := map[string]string{
		"bad JSON":      `{"key":`,
		"empty file":    ``,
		"key mismatch":  `{"key":"` + other.String() + `"}`,
		"bad layer":     `{"key":"` + key.String() + `","layer":"sha256:xyz"}`,
		"negative size": `{"key":"` + key.String() + `","layerSize":-1}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			p := filepath.Join(s.recordDir(), key.Encoded())
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get = %v, want ErrNotFound", err)
			}
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("corrupt record not removed: %v", err)
			}
		})
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	bad := []digest.Digest{
		"",
		"sha256:abc",
		"sha256:../../../../etc/passwd",
		digest.Digest("sha256:" + strings.Repeat("A", 64)),
		digest.Digest("sha512:" + strings.Repeat("a", 128)),
		digest.Digest("sha256:" + strings.Repeat("a", 63) + "/"),
	}
	for _, k := range bad {
		if _, err := s.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want a validation error", k, err)
		}
		if err := s.Put(ctx, Record{Key: k}); err == nil {
			t.Errorf("Put(%q) succeeded", k)
		}
		if err := s.Remove(ctx, k); err == nil {
			t.Errorf("Remove(%q) succeeded", k)
		}
	}
	good := Key(fullInputs())
	for _, r := range []Record{{Key: good, Layer: "sha256:xyz"}, {Key: good, DiffID: "md5:1"}, {Key: good, LayerSize: -1}} {
		if err := s.Put(ctx, r); err == nil {
			t.Errorf("Put(%+v) succeeded", r)
		}
	}
}

func TestRemoveAndRecords(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	var keys []digest.Digest
	for _, instr := range []string{"RUN a", "RUN b", "RUN c"} {
		k := Key(Inputs{Instruction: instr})
		keys = append(keys, k)
		if err := s.Put(ctx, Record{Key: k, Layer: digest.FromString(instr)}); err != nil {
			t.Fatal(err)
		}
	}
	// Noise that Records must skip or drop.
	if err := os.WriteFile(filepath.Join(s.recordDir(), "not-a-digest"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := digest.FromString("corrupt")
	if err := os.WriteFile(filepath.Join(s.recordDir(), corrupt.Encoded()), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := s.Remove(ctx, keys[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, keys[1]); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if _, err := s.Get(ctx, keys[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	recs, err := s.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest]bool{}
	for _, r := range recs {
		got[r.Key] = true
	}
	if len(recs) != 2 || !got[keys[0]] || !got[keys[2]] {
		t.Fatalf("Records = %+v, want keys %s and %s", recs, keys[0], keys[2])
	}
	if _, err := os.Stat(filepath.Join(s.recordDir(), corrupt.Encoded())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("corrupt record not removed by Records: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Records(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Records(cancelled) = %v", err)
	}
}
