package cache

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Why a step missed: the engine keeps, per Dockerfile and target, what the
// last build's steps were made of (their key inputs, and for a COPY from
// the context a short sum per file; SourceSums), and Explain compares a
// missing step with the same step of that build, input by input, in the
// words the engine gives it: "src/main.go changed", "build arg VERSION
// changed (1.2 -> 1.3)", "the step before it missed". The history is a hint
// for messages: a lost or stale one only loses explanations.

// historyVersion tags the history's format; another version is ignored.
const historyVersion = "builder.history.v1"

// StepRecord is one step of a build as the history keeps it.
type StepRecord struct {
	Text   string          `json:"text"`
	Parent digest.Digest   `json:"parent"`
	Key    digest.Digest   `json:"key"`
	Inputs json.RawMessage `json:"inputs"` // the step's key inputs (Step, encoded when needed)
	// Step is the struct Inputs encodes. The engine sets it; it is encoded
	// only when the history is written or a miss explained, never on a
	// fully cached build's hot path.
	Step any `json:"-"`
	// Files are the short sums of the context files a COPY of this key
	// selected (SourceSums); kept beside the history, by key, not in it.
	Files map[string]string `json:"-"`
}

type historyFile struct {
	Version    string                 `json:"version"`
	KeyVersion string                 `json:"keyVersion"`
	Steps      map[string]*StepRecord `json:"steps"` // by position: "stage index/step number"
}

// History is what the last build of one Dockerfile and target did, and
// what this one does, step by step (OpenHistory). It is safe for
// concurrent use.
type History struct {
	store *Store
	id    string
	once  sync.Once
	prev  map[string]*StepRecord

	mu     sync.Mutex
	cur    map[string]*StepRecord
	missed bool
}

// OpenHistory opens the history of one Dockerfile and target, named by
// id (read when first needed).
func (s *Store) OpenHistory(id string) *History {
	return &History{store: s, id: id, cur: map[string]*StepRecord{}}
}

func (h *History) previous() map[string]*StepRecord {
	h.once.Do(func() {
		data, err := h.store.History(h.id)
		var bh historyFile
		if err != nil || data == nil || json.Unmarshal(data, &bh) != nil ||
			bh.Version != historyVersion || bh.KeyVersion != Version {
			return
		}
		h.prev = bh.Steps
	})
	return h.prev
}

// Record notes a step of this build at pos (its place in the
// Dockerfile). Nothing is read for a hit: a build whose steps all hit
// neither reads nor writes the history.
func (h *History) Record(pos string, r *StepRecord, hit bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur[pos] = r
	h.missed = h.missed || !hit
}

// Previous is the record of the step at pos in the last build (nil: none).
func (h *History) Previous(pos string) *StepRecord { return h.previous()[pos] }

// Save writes this build's steps, unless they are the ones the history
// holds already (a fully cached rebuild writes nothing), and the file sums
// of the COPY steps that missed, by key.
func (h *History) Save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.cur {
		if r.Files != nil {
			if err := h.store.saveFiles(r.Key, r.Files); err != nil {
				return err
			}
		}
	}
	prev := h.previous()
	same := !h.missed && len(prev) == len(h.cur)
	for pos, r := range h.cur {
		if p := prev[pos]; p == nil || p.Key != r.Key || p.Text != r.Text {
			same = false
		}
	}
	if same {
		return nil
	}
	for _, r := range h.cur {
		r.inputs()
	}
	data, err := json.Marshal(historyFile{Version: historyVersion, KeyVersion: Version, Steps: h.cur})
	if err != nil {
		return err
	}
	return h.store.SaveHistory(h.id, data)
}

// Words say a step's inputs in the words of the Dockerfile. Field names are
// the inputs' JSON paths one level deep ("step.user").
type Words struct {
	Maps   []Word // string maps: a differing key K is "Text K changed (a -> b)"
	Env    []Word // "K=V" lists: likewise, but for keys Maps did not name
	Files  string // the field a change of which is told file by file
	Fields []Word // the others in order: Text with a space is said as it is, else "Text changed (a -> b)"
}

// Word names one field.
type Word struct{ Field, Text string }

// inputs is Inputs, encoding Step first when that was not done yet.
func (r *StepRecord) inputs() json.RawMessage {
	if r.Inputs == nil && r.Step != nil {
		r.Inputs, _ = json.Marshal(r.Step)
	}
	return r.Inputs
}

// Parent says how the step before a missing one fared in this build.
type Parent int

const (
	FirstOfStage Parent = iota // none: the stage's FROM is the parent
	ParentMissed               // it ran
	ParentHit                  // it was a cache hit
)

// Explain compares the missing step cur with prev, the same step of the
// last build (its file sums read from the store when cur has its own):
// the first reason is the one worth a line, the others follow. None when
// there is no earlier build of this step.
func (h *History) Explain(prev, cur *StepRecord, parent Parent, w Words) []string {
	if prev != nil && cur.Files != nil && prev.Files == nil {
		prev.Files = h.store.files(prev.Key)
	}
	return Explain(prev, cur, parent, w)
}

// Explain is History.Explain with the file sums as given.
func Explain(prev, cur *StepRecord, parent Parent, w Words) []string {
	if prev == nil {
		return nil
	}
	if prev.Text != cur.Text {
		return []string{"the instruction changed (was: " + prev.Text + ")"}
	}
	var out []string
	if prev.Parent != cur.Parent {
		switch parent {
		case FirstOfStage:
			out = append(out, fmt.Sprintf("the image or stage it starts from changed (now %s, was %s)", shortDigest(cur.Parent), shortDigest(prev.Parent)))
		case ParentMissed:
			out = append(out, "the step before it missed")
		default:
			out = append(out, "the steps before it differ from the last build (they were cached from another one)")
		}
	}
	var a, b map[string]any
	if json.Unmarshal(prev.inputs(), &a) != nil || json.Unmarshal(cur.inputs(), &b) != nil {
		return append(out, "its inputs changed")
	}
	out = append(out, inputDiffs(flatten("", a), flatten("", b), prev.Files, cur.Files, w)...)
	if len(out) == 0 {
		if prev.Key == cur.Key {
			return []string{"its cache record is gone (pruned, or a missing layer)"}
		}
		return []string{"its inputs changed"}
	}
	return out
}

// inputDiffs names the inputs that differ, in the order of w.
func inputDiffs(a, b map[string]any, fa, fb map[string]string, w Words) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range w.Maps {
		am, _ := a[m.Field].(map[string]any)
		bm, _ := b[m.Field].(map[string]any)
		for _, k := range differingKeys(am, bm) {
			seen[k] = true
			out = append(out, changeText(m.Text+" "+k, am[k], bm[k]))
		}
	}
	for _, e := range w.Env {
		ea, eb := envMap(a[e.Field]), envMap(b[e.Field])
		for _, k := range differingKeys(ea, eb) {
			if !seen[k] {
				out = append(out, changeText(e.Text+" "+k, ea[k], eb[k]))
			}
		}
	}
	if w.Files != "" && jsonText(a[w.Files]) != jsonText(b[w.Files]) {
		out = append(out, fileChanges(fa, fb)...)
	}
	for _, f := range w.Fields {
		if jsonText(a[f.Field]) == jsonText(b[f.Field]) {
			continue
		}
		if strings.Contains(f.Text, " ") {
			out = append(out, f.Text)
		} else {
			out = append(out, changeText(f.Text, a[f.Field], b[f.Field]))
		}
	}
	return out
}

// fileChanges says which copied files changed, were added or removed.
func fileChanges(fa, fb map[string]string) []string {
	if fa == nil || fb == nil {
		return []string{"the copied files changed"}
	}
	var changed, added, removed []string
	for _, k := range differingKeys(fa, fb) {
		av, aok := fa[k]
		bv, bok := fb[k]
		switch {
		case !aok:
			added = append(added, k)
		case !bok:
			removed = append(removed, k)
		case av != bv:
			changed = append(changed, k)
		}
	}
	var out []string
	for _, l := range []struct {
		names []string
		verb  string
	}{{changed, "changed"}, {added, "added"}, {removed, "removed"}} {
		switch n := len(l.names); {
		case n == 1:
			out = append(out, l.names[0]+" "+l.verb)
		case n > 1:
			shown := l.names[:min(n, 3)]
			more := ""
			if n > 3 {
				more = ", ..."
			}
			out = append(out, fmt.Sprintf("%d files %s (%s%s)", n, l.verb, strings.Join(shown, ", "), more))
		}
	}
	if len(out) == 0 {
		return []string{"the copied files changed"}
	}
	return out
}

// flatten maps {"step":{"user":"a"}} to {"step.user":"a"} one level deep
// (deeper values stay as they are: lists and maps compare whole).
func flatten(prefix string, m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && prefix == "" {
			maps.Copy(out, flatten(k+".", sub))
			continue
		}
		out[prefix+k] = v
	}
	return out
}

func envMap(v any) map[string]any {
	out := map[string]any{}
	list, _ := v.([]any)
	for _, e := range list {
		s, _ := e.(string)
		k, val, _ := strings.Cut(s, "=")
		out[k] = val
	}
	return out
}

func changeText(what string, a, b any) string {
	switch {
	case a == nil:
		return fmt.Sprintf("%s set (%s)", what, short(b))
	case b == nil:
		return what + " unset"
	}
	return fmt.Sprintf("%s changed (%s -> %s)", what, short(a), short(b))
}

func short(v any) string {
	s, ok := v.(string)
	if !ok {
		s = jsonText(v)
	}
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// differingKeys returns the keys of a and b whose values differ, sorted.
func differingKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if jsonText(a[k]) != jsonText(b[k]) {
			out = append(out, k)
		}
	}
	return out
}

func shortDigest(d digest.Digest) string {
	if err := d.Validate(); err != nil {
		return string(d)
	}
	return d.Algorithm().String() + ":" + d.Encoded()[:12]
}
