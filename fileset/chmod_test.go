package fileset

import (
	"io/fs"
	"testing"

	"github.com/builderdev/builder/internal/fsmode"
)

func TestParseChmod(t *testing.T) {
	file, dir, exe := fs.FileMode(0o644), fs.ModeDir|0o700, fs.FileMode(0o750)
	link := fs.ModeSymlink | 0o777
	tests := []struct {
		in      string
		in0     fs.FileMode
		want    fs.FileMode
		invalid bool
	}{
		{"0755", file, 0o755, false},
		{"644", dir, fs.ModeDir | 0o644, false},
		{"4755", file, fs.ModeSetuid | 0o755, false},
		{"1777", dir, fs.ModeDir | fs.ModeSticky | 0o777, false},
		{"u+x", file, 0o744, false},
		{"go-r", file, 0o600, false},
		{"u=rwx,go=rx", file, 0o755, false},
		{"a+X", file, 0o644, false},
		{"a+X", exe, 0o751, false},
		{"a+X", dir, fs.ModeDir | 0o711, false},
		{"u+s", exe, fs.ModeSetuid | 0o750, false},
		{"+t", dir, fs.ModeDir | fs.ModeSticky | 0o700, false},
		{"o=", exe, 0o750, false},
		{"u+x-w", file, 0o544, false},
		{"99x", 0, 0, true},
		{"u*x", 0, 0, true},
		{"u", 0, 0, true},
		{"17777", 0, 0, true},
		// More symbolic forms.
		{"a=rwx,o-w", file, 0o775, false},
		{"ug+s", exe, fs.ModeSetuid | fs.ModeSetgid | 0o750, false},
		{"ug+s", dir, fs.ModeDir | fs.ModeSetuid | fs.ModeSetgid | 0o700, false},
		{"=r", exe, 0o444, false},
		{"=r", fs.ModeSetuid | 0o755, 0o444, false}, // "=" with no who clears the special bits too
		{"u=rwX,go=rX", dir, fs.ModeDir | 0o755, false},
		{"u=rwX,go=rX", file, 0o644, false},
		{"u=rwX,go=rX", exe, 0o755, false},
		{"go=", 0o777, 0o700, false},
		{"u-s", fs.ModeSetuid | 0o755, 0o755, false},
		{"g-s", fs.ModeSetuid | fs.ModeSetgid | 0o755, fs.ModeSetuid | 0o755, false},
		{"o+t", file, fs.ModeSticky | 0o644, false},
		{"u+t", file, file, false}, // t is for others (a, o) only
		{"a-x,u+x", 0o755, 0o744, false},
		{"ugo+w", 0o444, 0o666, false},
		{"+", file, file, false},
		{"a+rwx", link, link, false}, // type bits kept
		{"0", exe, 0, false},
		{"7777", file, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o777, false},
		{"0644", link, fs.ModeSymlink | 0o644, false},
		{"g=u", 0, 0, true},
		{"u+x,", 0, 0, true},
		{",", 0, 0, true},
		{"a", 0, 0, true},
		{"x", 0, 0, true},
		{"-8", 0, 0, true},
	}
	for _, tt := range tests {
		f, err := ParseChmod(tt.in)
		if tt.invalid {
			if err == nil {
				t.Errorf("ParseChmod(%q) accepted", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseChmod(%q): %v", tt.in, err)
			continue
		}
		if got := f(tt.in0); got != tt.want {
			t.Errorf("ParseChmod(%q)(%v) = %v, want %v", tt.in, tt.in0, got, tt.want)
		}
	}
	if f, err := ParseChmod(""); f != nil || err != nil {
		t.Errorf(`ParseChmod("") = %v, %v; want nil, nil`, f, err)
	}
	for in, want := range map[string]string{
		"17777": "invalid --chmod=17777: octal mode above 07777",
		"u*x":   `invalid --chmod=u*x: bad clause "u*x" (want an octal mode like 0755 or a symbolic one like u=rwx,go=rx)`,
		"u+x,":  `invalid --chmod=u+x,: bad clause "" (want an octal mode like 0755 or a symbolic one like u=rwx,go=rx)`,
	} {
		if _, err := ParseChmod(in); err == nil || err.Error() != want {
			t.Errorf("ParseChmod(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestFromOctal(t *testing.T) {
	tests := []struct {
		in   uint32
		want fs.FileMode
	}{
		{0o755, 0o755},
		{0o4755, fs.ModeSetuid | 0o755},
		{0o2750, fs.ModeSetgid | 0o750},
		{0o1777, fs.ModeSticky | 0o777},
		{0o7000, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
		{0o10644, 0o644}, // bits above 07777 are dropped
		{0, 0},
	}
	for _, tt := range tests {
		if got := FromOctal(tt.in); got != tt.want {
			t.Errorf("FromOctal(%#o) = %v, want %v", tt.in, got, tt.want)
		}
		if tt.in <= 0o7777 && fsmode.ToUnix(tt.want) != tt.in {
			t.Errorf("fsmode.ToUnix(%v) = %#o, want %#o", tt.want, fsmode.ToUnix(tt.want), tt.in)
		}
	}
}
