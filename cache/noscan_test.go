package cache

import (
	"reflect"
	"testing"
)

// TestPerFileArraysHoldNoPointer: the arrays a hash fills per file while
// the walk allocates (the stat cache's entries, the stat results) must
// stay pointer-free, or the collector reads their unwritten pages and
// every later write to one costs a copy-on-write fault and a TLB
// shootdown (see fileResults).
func TestPerFileArraysHoldNoPointer(t *testing.T) {
	for _, v := range []any{cachedStat{}, fileResult{}} {
		typ := reflect.TypeOf(v)
		if p := pointerIn(typ); p != "" {
			t.Errorf("%s holds a pointer: %s", typ, p)
		}
	}
}

// pointerIn names a field of t that is or holds a pointer ("" if none).
func pointerIn(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if p := pointerIn(t.Field(i).Type); p != "" {
				return t.Field(i).Name + "." + p
			}
		}
		return ""
	case reflect.Array:
		return pointerIn(t.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	default:
		return t.Kind().String()
	}
}
