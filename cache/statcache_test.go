package cache

import (
	"context"
	"reflect"
	"testing"
)

// updateStatCache applies the merge to cached, as the file would read
// back, and reports whether it changed.
func updateStatCache(cached *statCache, paths []string, results []fileResult) bool {
	m := statMerge{cached, paths, &fileResults{r: results}}
	if !m.changes() {
		return false
	}
	ents := map[string]statEntry{}
	m.each(func(name string, e *statEntry) { ents[name] = *e })
	*cached = *newStatCache(ents)
	return true
}

// TestUpdateStatCache: one merge of the sorted paths into the sorted
// cache adds what was read, keeps what served, drops what is no longer a
// regular file and leaves entries of other paths alone.
func TestUpdateStatCache(t *testing.T) {
	reg := func(size int64, read, persist bool) fileResult {
		return fileResult{st: fileStat{mode: sIFREG | 0o644, size: size}, read: read, persist: persist}
	}
	dir := fileResult{st: fileStat{mode: sIFDIR | 0o755}}
	cases := []struct {
		name    string
		old     map[string]statEntry
		paths   []string
		results []fileResult
		want    map[string]int64 // path -> size; nil: unchanged
	}{
		{"all served", map[string]statEntry{"a": {size: 1}, "b": {size: 2}},
			[]string{"a", "b"}, []fileResult{reg(1, false, false), reg(2, false, false)}, nil},
		{"dir not cached", map[string]statEntry{"a": {size: 1}},
			[]string{"a", "d"}, []fileResult{reg(1, false, false), dir}, nil},
		{"racy read not kept", map[string]statEntry{},
			[]string{"a"}, []fileResult{reg(1, true, false)}, nil},
		{"mixed", map[string]statEntry{"0": {size: 9}, "a": {size: 1}, "c": {size: 3}, "e": {size: 5}, "z": {size: 26}},
			[]string{"a", "b", "c", "d", "e"},
			[]fileResult{reg(10, true, true), reg(2, true, true), reg(3, false, false), dir, dir},
			map[string]int64{"0": 9, "a": 10, "b": 2, "c": 3, "z": 26}},
		{"racy read drops", map[string]statEntry{"a": {size: 1}, "b": {size: 2}},
			[]string{"a"}, []fileResult{reg(7, true, false)}, map[string]int64{"b": 2}},
	}
	for _, tc := range cases {
		c := newStatCache(tc.old)
		changed := updateStatCache(c, tc.paths, tc.results)
		if changed != (tc.want != nil) {
			t.Errorf("%s: changed = %v", tc.name, changed)
		}
		if tc.want == nil {
			continue
		}
		got := map[string]int64{}
		for i, e := range c.ents {
			if i > 0 && c.name(i-1) >= c.name(i) {
				t.Errorf("%s: entries out of order at %q", tc.name, c.name(i))
			}
			got[c.name(i)] = e.size
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: cache = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHashedSums: Hash's digest is HashSources', and its Sums are what
// SourceSums finds (a short sum per source path, changing with the file),
// without a second look at the files.
func TestHashedSums(t *testing.T) {
	dir, srcs := baseContext(t)
	s := openStore(t)
	h, err := s.Hash(context.Background(), dir, srcs)
	must(t, err)
	if h.Digest != hash(t, s, dir, srcs) {
		t.Errorf("Hash digest %s differs from HashSources'", h.Digest)
	}
	reads := s.reads.Load()
	sums := h.Sums()
	if s.reads.Load() != reads {
		t.Error("Sums read files")
	}
	want, err := s.SourceSums(context.Background(), dir, srcs)
	must(t, err)
	if !reflect.DeepEqual(sums, want) || len(sums) != len(srcs) {
		t.Errorf("Sums = %v, SourceSums = %v", sums, want)
	}
	if again := h.Sums(); again != nil {
		t.Errorf("a second Sums = %v, want nil (the stats are dropped)", again)
	}
	write(t, dir, "a.txt", "changed", 0o644)
	h2, err := s.Hash(context.Background(), dir, srcs)
	must(t, err)
	sums2 := h2.Sums()
	for p := range sums {
		if (sums[p] != sums2[p]) != (p == "a.txt") {
			t.Errorf("%s: sum %s then %s after a.txt changed", p, sums[p], sums2[p])
		}
	}
}
