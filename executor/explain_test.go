package executor

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
	"github.com/opencontainers/go-digest"
)

func rec(t *testing.T, text string, parent string, sk stepKey, files map[string]string) *cache.StepRecord {
	t.Helper()
	in, err := json.Marshal(sk)
	if err != nil {
		t.Fatal(err)
	}
	return &cache.StepRecord{Text: text, Parent: digest.FromString(parent), Inputs: in, Files: files, Key: digest.FromBytes(append([]byte(parent), in...))}
}

func TestMissReasons(t *testing.T) {
	run := func(f func(k *runKey)) stepKey {
		k := runKey{Op: "RUN", Args: []string{"/bin/sh", "-c", "make"}, Env: []string{"PATH=/bin", "A=1"}, User: "app", Workdir: "/src"}
		f(&k)
		return stepKey{Step: k}
	}
	same := func(*runKey) {}
	base := rec(t, "RUN make", "p", run(same), nil)
	tests := []struct {
		name  string
		cur   *cache.StepRecord
		first bool
		want  []string
	}{
		{"no change: the record is gone", rec(t, "RUN make", "p", run(same), nil), false, []string{"its cache record is gone (pruned, or a missing layer)"}},
		{"instruction", rec(t, "RUN make all", "p", run(same), nil), false, []string{"the instruction changed (was: RUN make)"}},
		{"parent", rec(t, "RUN make", "q", run(same), nil), false, []string{"the step before it missed"}},
		{"env", rec(t, "RUN make", "p", run(func(k *runKey) { k.Env = []string{"PATH=/bin", "A=2", "B=x"} }), nil), false,
			[]string{"ENV A changed (1 -> 2)", "ENV B set (x)"}},
		{"user and workdir", rec(t, "RUN make", "p", run(func(k *runKey) { k.User, k.Workdir = "root", "/" }), nil), false,
			[]string{"USER changed (app -> root)", "WORKDIR changed (/src -> /)"}},
		{"mount", rec(t, "RUN make", "p", run(func(k *runKey) { k.Mounts = []mountKey{{Type: "cache", Target: "/c"}} }), nil), false,
			[]string{"a --mount changed"}},
		{"compression", rec(t, "RUN make", "p", stepKey{Step: run(same).Step, Layer: layerKey{Compression: layer.Zstd}}, nil), false,
			[]string{"--compression set (zstd)"}},
	}
	for _, tt := range tests {
		got := cache.Explain(base, tt.cur, map[bool]cache.Parent{true: cache.FirstOfStage, false: cache.ParentMissed}[tt.first], keyWords)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := cache.Explain(nil, base, cache.ParentMissed, keyWords); got != nil {
		t.Errorf("no history: %q", got)
	}
	first := cache.Explain(base, rec(t, "RUN make", "q", run(same), nil), cache.FirstOfStage, keyWords)
	if len(first) != 1 || first[0][:44] != "the image or stage it starts from changed (n" {
		t.Errorf("first step, other base: %q", first)
	}
}

func TestMissReasonParentHit(t *testing.T) {
	k := stepKey{Step: runKey{Op: "RUN", Args: []string{"make"}}}
	got := cache.Explain(rec(t, "RUN make", "p", k, nil), rec(t, "RUN make", "q", k, nil), cache.ParentHit, keyWords)
	if len(got) != 1 || got[0] != "the steps before it differ from the last build (they were cached from another one)" {
		t.Errorf("parent hit: %q", got)
	}
}
