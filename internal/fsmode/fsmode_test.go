package fsmode

import (
	"io/fs"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for n := uint32(0); n <= 0o7777; n++ {
		if got := ToUnix(FromUnix(n)); got != n {
			t.Fatalf("ToUnix(FromUnix(%#o)) = %#o", n, got)
		}
	}
	if got := ToUnix(fs.ModeDir | fs.ModeSetgid | 0o750); got != 0o2750 {
		t.Errorf("ToUnix(dir setgid 0750) = %#o, want 02750", got)
	}
}
