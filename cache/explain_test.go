package cache

import (
	"reflect"
	"testing"
)

func TestFileChanges(t *testing.T) {
	a := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}
	b := map[string]string{"a": "9", "c": "3", "n1": "1", "n2": "1", "n3": "1", "n4": "1"}
	want := []string{"a changed", "4 files added (n1, n2, n3, ...)", "4 files removed (b, d, e, ...)"}
	if got := fileChanges(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("fileChanges = %q, want %q", got, want)
	}
	if got := fileChanges(nil, b); !reflect.DeepEqual(got, []string{"the copied files changed"}) {
		t.Errorf("without sums: %q", got)
	}
}
