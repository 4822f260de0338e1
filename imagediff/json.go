package imagediff

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// seg is one step of a JSON path: an object key, or an array index when index >= 0.
type seg struct {
	key   string
	index int
}

func (s seg) is(key string) bool { return s.index < 0 && s.key == key }

// skipManifestField skips what Side and the layer section already cover.
// manifestLayer names a layer descriptor; one present on one side only is
// reported by the layer section ("only in b"), not as a field.
func manifestLayer(p []seg) bool {
	return len(p) == 2 && p[0].is("layers") && p[1].index >= 0
}

func skipManifestField(p []seg) bool {
	switch {
	case len(p) == 2 && p[0].is("config"):
		return p[1].is("digest") || p[1].is("size")
	case len(p) == 3 && p[0].is("layers") && p[1].index >= 0:
		return p[2].is("digest") || p[2].is("size")
	}
	return false
}

// skipConfigField skips the diff_ids: each is a layer's identity, and the
// layer section reports the layers that differ, with their diff_ids.
func skipConfigField(p []seg) bool {
	return len(p) == 3 && p[0].is("rootfs") && p[1].is("diff_ids") && p[2].index >= 0
}

// diffDocs diffs two decoded JSON documents whose blobs have digests da and
// db. skip, when set, names paths to ignore. When the blobs differ but no
// field does (skipped ones included), the result is one "(encoding)" entry:
// a manifest that differs only by its config digest is not an encoding change.
func diffDocs(a, b any, skip, covered func([]seg) bool, da, db digest.Digest) ([]FieldDiff, error) {
	d := &jsonDiff{skip: skip, covered: covered}
	d.walk(nil, "", a, b, true, true)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.out) == 0 && !d.hidden && da != db {
		ra, _ := rawJSON(da.String())
		rb, _ := rawJSON(db.String())
		d.out = append(d.out, FieldDiff{Path: "(encoding)", A: ra, B: rb})
	}
	return d.out, nil
}

type jsonDiff struct {
	skip   func([]seg) bool
	out    []FieldDiff
	hidden bool // a skipped field differs
	err    error
	// covered, when set, names paths whose one-sided values are reported
	// elsewhere (they count as hidden differences).
	covered func([]seg) bool
}

// walk compares a and b at path p (displayed as path); hasA/hasB say
// whether the value exists on that side. Objects are compared by sorted
// key, arrays by index; anything else is reported whole.
func (d *jsonDiff) walk(p []seg, path string, a, b any, hasA, hasB bool) {
	if d.skip != nil && d.skip(p) {
		if hasA != hasB || !reflect.DeepEqual(a, b) {
			d.hidden = true
		}
		return
	}
	if hasA != hasB && d.covered != nil && d.covered(p) {
		d.hidden = true
		return
	}
	if hasA && hasB {
		switch x := a.(type) {
		case map[string]any:
			if y, ok := b.(map[string]any); ok {
				for _, k := range unionKeys(x, y) {
					va, okA := x[k]
					vb, okB := y[k]
					d.walk(append(p, seg{key: k, index: -1}), joinKey(path, k), va, vb, okA, okB)
				}
				return
			}
		case []any:
			if y, ok := b.([]any); ok {
				for i := range max(len(x), len(y)) {
					var va, vb any
					if i < len(x) {
						va = x[i]
					}
					if i < len(y) {
						vb = y[i]
					}
					d.walk(append(p, seg{index: i}), path+"["+strconv.Itoa(i)+"]", va, vb, i < len(x), i < len(y))
				}
				return
			}
		default:
			if a == b { // leaves: string, json.Number, bool, nil
				return
			}
		}
	}
	fd := FieldDiff{Path: path}
	if path == "" {
		fd.Path = "(root)"
	}
	if hasA {
		fd.A = d.raw(p, a)
	}
	if hasB {
		fd.B = d.raw(p, b)
	}
	d.out = append(d.out, fd)
}

// raw encodes v (found at p) without the fields skip names.
func (d *jsonDiff) raw(p []seg, v any) json.RawMessage {
	if d.skip != nil {
		v = d.prune(p, v)
	}
	r, err := rawJSON(v)
	if err != nil && d.err == nil {
		d.err = err
	}
	return r
}

func (d *jsonDiff) prune(p []seg, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			cp := append(p, seg{key: k, index: -1})
			if !d.skip(cp) {
				out[k] = d.prune(cp, c)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = d.prune(append(p, seg{index: i}), c)
		}
		return out
	}
	return v
}

// rawJSON encodes v compactly, without HTML escaping ("a && b" stays readable).
func rawJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// joinKey appends an object key to a path: .key for identifiers, ["key"]
// (JSON-quoted) for anything else, such as label names with dots.
func joinKey(path, key string) string {
	if isIdent(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	q, _ := rawJSON(key)
	return path + "[" + string(q) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
