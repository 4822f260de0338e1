package fileset

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOpenNoFollow(t *testing.T) {
	root := mkTree(t, "f", "l -> f")
	if _, err := Dir(root).Open("/l"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("Open of a symlink = %v, want ELOOP", err)
	}
	f, err := OpenNoFollow(filepath.Join(root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}
