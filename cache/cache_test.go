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

// testStep stands for an engine step's key struct: every kind of field
// canonical handles.
type testStep struct {
	Op      string            `json:"op"`
	Env     []string          `json:"env,omitempty"`
	User    string            `json:"user,omitempty"`
	Workdir string            `json:"workdir,omitempty"`
	Args    map[string]string `json:"args,omitempty"`
	Sources digest.Digest     `json:"sources,omitempty"`
	Mounts  []testMount       `json:"mounts,omitempty"`
	Layer   *testLayer        `json:"layer,omitempty"`
	Epoch   int64             `json:"epoch,omitempty"`
	Mode    uint32            `json:"mode,omitempty"`
	RO      bool              `json:"ro,omitempty"`
	Nested  any               `json:"nested,omitempty"`
	Skipped string            `json:"-"`
	NoTag   string
}

type testMount struct {
	Target string `json:"target"`
	UID    int    `json:"uid"`
}

type testLayer struct {
	Compression string `json:"compression"`
}

// fullInputs sets every field of Inputs and of its step.
func fullInputs() Inputs {
	return Inputs{
		Version: Version,
		Parent:  digest.FromString("parent"),
		Step:    fullStep(),
	}
}

func fullStep() testStep {
	return testStep{
		Op:      "RUN",
		Env:     []string{"PATH=/usr/bin:/bin", "A=1"},
		User:    "www",
		Workdir: "/src",
		Args:    map[string]string{"VERSION": "1.2", "DEBUG": "0"},
		Sources: digest.FromString("sources"),
		Mounts:  []testMount{{"/cache", 0}, {"/tmp", 1000}},
		Layer:   &testLayer{"zstd"},
		Epoch:   1700000000,
		Mode:    0o755,
		RO:      true,
		Nested:  map[string]any{"k": []string{"v"}},
		NoTag:   "x",
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
	step := func(f func(*testStep)) func(*Inputs) {
		return func(in *Inputs) {
			s := fullStep()
			f(&s)
			in.Step = s
		}
	}
	mutations := map[string]func(*Inputs){
		"Version":      func(in *Inputs) { in.Version = "builder.step.v0" },
		"Parent":       func(in *Inputs) { in.Parent = digest.FromString("other") },
		"Step":         func(in *Inputs) { in.Step = nil },
		"Step.Op":      step(func(s *testStep) { s.Op = "COPY" }),
		"Step.Env":     step(func(s *testStep) { s.Env = []string{"A=1", "PATH=/usr/bin:/bin"} }),
		"Step.User":    step(func(s *testStep) { s.User = "root" }),
		"Step.Workdir": step(func(s *testStep) { s.Workdir = "/" }),
		"Step.Args":    step(func(s *testStep) { s.Args["DEBUG"] = "1" }),
		"Step.Sources": step(func(s *testStep) { s.Sources = "" }),
		"Step.Mounts":  step(func(s *testStep) { s.Mounts[1].UID = 0 }),
		"Step.Layer":   step(func(s *testStep) { s.Layer = nil }),
		"Step.Epoch":   step(func(s *testStep) { s.Epoch = 1 }),
		"Step.Mode":    step(func(s *testStep) { s.Mode = 0o644 }),
		"Step.RO":      step(func(s *testStep) { s.RO = false }),
		"Step.Nested":  step(func(s *testStep) { s.Nested = map[string]any{"k": []string{"w"}} }),
		"Step.NoTag":   step(func(s *testStep) { s.NoTag = "y" }),
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Inputs](), reflect.TypeFor[testStep]()} {
		prefix := ""
		if typ != reflect.TypeFor[Inputs]() {
			prefix = "Step."
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if _, ok := mutations[prefix+f.Name]; !ok && f.Tag.Get("json") != "-" {
				t.Errorf("%s%s has no mutation in this test", prefix, f.Name)
			}
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
	in := fullInputs()
	s := fullStep()
	s.Skipped = "ignored"
	in.Step = s
	if Key(in) != base {
		t.Error(`a json:"-" field changed the key`)
	}
}

func TestKeyNilEmptyAndMapOrder(t *testing.T) {
	empty := Inputs{Step: testStep{Op: "RUN true", Env: []string{}, Args: map[string]string{}, Mounts: []testMount{}}}
	zero := Inputs{Step: testStep{Op: "RUN true"}}
	if Key(empty) != Key(zero) {
		t.Error("nil and empty slices/maps must give the same key")
	}
	if Key(zero) != Key(Inputs{Step: &testStep{Op: "RUN true"}}) {
		t.Error("a pointer to a step must key as the step")
	}
	a := fullStep()
	b := fullStep()
	b.Args = map[string]string{}
	for _, k := range []string{"DEBUG", "VERSION"} { // other insertion order
		b.Args[k] = a.Args[k]
	}
	for range 20 { // map iteration order varies between runs
		if Key(Inputs{Step: a}) != Key(Inputs{Step: b}) {
			t.Fatal("map order changed the key")
		}
	}
}

func TestKeyNoAmbiguity(t *testing.T) {
	step := func(s testStep) Inputs { return Inputs{Step: s} }
	pairs := []struct {
		name string
		a, b Inputs
	}{
		{"invalid UTF-8", step(testStep{Op: "RUN echo \xe9"}), step(testStep{Op: "RUN echo \xe8"})},
		{"invalid vs U+FFFD", step(testStep{Op: "RUN echo \xe9"}), step(testStep{Op: "RUN echo \ufffd"})},
		{"NUL prefix", step(testStep{User: "\x00" + "6Q=="}), step(testStep{User: "\xe9"})},
		{"field boundary", step(testStep{User: "a", Workdir: "b"}), step(testStep{User: "ab"})},
		{"slice boundary", step(testStep{Env: []string{"A=1", "B=2"}}), step(testStep{Env: []string{"A=1B=2"}})},
		{"map key", step(testStep{Args: map[string]string{"\xe9": "x"}}), step(testStep{Args: map[string]string{"\xe8": "x"}})},
		{"nested invalid UTF-8", step(testStep{Mounts: []testMount{{"/\xe9", 0}}}), step(testStep{Mounts: []testMount{{"/\xe8", 0}}})},
		{"separator in a name", step(testStep{Mounts: []testMount{{"/a:1", 0}}}), step(testStep{Mounts: []testMount{{"/a", 1}}})},
		{"element boundary", step(testStep{Mounts: []testMount{{"/a", 0}, {"/b", 0}}}), step(testStep{Mounts: []testMount{{"/a/b", 0}}})},
		{"string vs number", step(testStep{Nested: "1"}), step(testStep{Nested: 1})},
	}
	for _, p := range pairs {
		if Key(p.a) == Key(p.b) {
			t.Errorf("%s: distinct inputs share a key", p.name)
		}
	}
}

func TestKeyRejectsFloats(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a float in a step did not panic")
		}
	}()
	Key(Inputs{Step: struct{ F float64 }{1.5}})
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
		k := Key(Inputs{Step: testStep{Op: instr}})
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
