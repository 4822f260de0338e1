package cache

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// Version tags every key; bump it when step semantics or the shape of a
// step's inputs change.
const Version = "builder.step.v6"

// Inputs identify a step. Key() is the digest of their canonical JSON.
//
// Step is the step's own inputs as a struct of named fields (the engine's
// runKey, copyKey, ...): what identifies the work, kept apart from doing
// it. Its fields may be strings (and string kinds such as digest.Digest),
// bools, integers, and structs, pointers, slices, maps with string keys
// and interfaces of those; never a string glued from pieces with
// separators, which a name containing the separator makes ambiguous.
type Inputs struct {
	Version string        `json:"version"`
	Parent  digest.Digest `json:"parent"` // previous step's key, or the base image's manifest digest
	Step    any           `json:"step"`
}

// Key returns the digest of in's canonical JSON (Version defaulted).
//
// The canonical form: struct fields by their json names (omitempty and "-"
// honoured), object keys sorted, nil and empty slices and maps omitted
// where omitempty is set. Every string, at any depth and as a map key, is
// kept when it is valid UTF-8 not starting with NUL, and is otherwise
// written as NUL + base64 of its bytes (encoding/json would fold invalid
// bytes into U+FFFD), so distinct inputs never share a key. A Step of a
// kind JSON cannot hold (floats, funcs, channels) is a programming error
// and panics.
func Key(in Inputs) digest.Digest {
	if in.Version == "" {
		in.Version = Version
	}
	b, err := json.Marshal(canonical(reflect.ValueOf(in)))
	if err != nil {
		panic(fmt.Sprintf("marshal cache inputs: %v", err))
	}
	return digest.FromBytes(b)
}

// canonical turns v into plain maps, slices, strings, bools and integers
// that encoding/json writes in one way only.
func canonical(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return canonical(v.Elem())
	case reflect.String:
		return keyString(v.String())
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = canonical(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			panic(fmt.Sprintf("cache key: map key of kind %s", v.Type().Key().Kind()))
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[keyString(it.Key().String())] = canonical(it.Value())
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if strings.Contains(","+opts+",", ",omitempty,") && emptyValue(fv) {
				continue
			}
			out[name] = canonical(fv)
		}
		return out
	}
	panic(fmt.Sprintf("cache key: value of kind %s", v.Kind()))
}

// emptyValue is encoding/json's omitempty test.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// keyString maps s injectively onto strings that encoding/json keeps intact.
func keyString(s string) string {
	if utf8.ValidString(s) && !strings.HasPrefix(s, "\x00") {
		return s
	}
	return "\x00" + base64.StdEncoding.EncodeToString([]byte(s))
}
