package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/builderdev/builder/client"
)

func TestParseMounts(t *testing.T) {
	cwd, _ := os.Getwd()
	for _, tc := range []struct {
		flag, in string
		want     client.RunMount
		err      bool
	}{
		{"-v", "/h:/c", client.RunMount{Type: "bind", Source: "/h", Target: "/c"}, false},
		{"-v", "/h:/c:ro", client.RunMount{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true}, false},
		{"-v", "./h:/c", client.RunMount{Type: "bind", Source: filepath.Join(cwd, "h"), Target: "/c"}, false},
		{"-v", "name:/c", client.RunMount{Type: "volume", Source: "name", Target: "/c"}, false},
		{"-v", "/c", client.RunMount{Type: "volume", Target: "/c"}, false},
		{"-v", "/h:/c:bogus", client.RunMount{}, true},
		{"-v", "a:b:c:d", client.RunMount{}, true},
		{"--tmpfs", "/t:size=1m,exec,ro", client.RunMount{Type: "tmpfs", Target: "/t", ReadOnly: true, Options: []string{"size=1m", "exec"}}, false},
		{"--mount", "type=bind,src=/h,dst=/c,readonly", client.RunMount{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true}, false},
		{"--mount", "type=bind,source=/h,target=/c,ro=false", client.RunMount{Type: "bind", Source: "/h", Target: "/c"}, false},
		{"--mount", "source=v,destination=/c", client.RunMount{Type: "volume", Source: "v", Target: "/c"}, false},
		{"--mount", "type=tmpfs,dst=/t,tmpfs-size=1024,tmpfs-mode=1770", client.RunMount{Type: "tmpfs", Target: "/t", Options: []string{"size=1024", "mode=1770"}}, false},
		{"--mount", "type=bind,dst=/c", client.RunMount{}, true},
		{"--mount", "type=volume,src=v", client.RunMount{}, true},
		{"--mount", "type=bind,src=/h,dst=/c,bogus=1", client.RunMount{}, true},
		{"--mount", "type=bind,src=/h,dst=/c,bind-propagation=shared", client.RunMount{}, true},
		{"--mount", "type=tmpfs,dst=/t,tmpfs-mode=9", client.RunMount{}, true},
	} {
		var v, tm, m []string
		switch tc.flag {
		case "-v":
			v = []string{tc.in}
		case "--tmpfs":
			tm = []string{tc.in}
		default:
			m = []string{tc.in}
		}
		got, err := parseMounts(v, tm, m)
		if tc.err {
			if err == nil {
				t.Errorf("%s %s = %+v; want an error", tc.flag, tc.in, got)
			}
			continue
		}
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
			t.Errorf("%s %s = %+v, %v; want %+v", tc.flag, tc.in, got, err, tc.want)
		}
	}
}

func TestParseEnv(t *testing.T) {
	f := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(f, []byte("# c\n\n  A=1\nB=x=y\nHOSTVAR\nUNSET\nC=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) {
		if k == "HOSTVAR" {
			return "h", true
		}
		return "", false
	}
	got, err := parseEnv([]string{f}, []string{"A=2", "HOSTVAR"}, lookup)
	want := []string{"A=1", "B=x=y", "HOSTVAR=h", "C=", "A=2", "HOSTVAR=h"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseEnv = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"=x", "A B=1"} {
		if _, err := parseEnv(nil, []string{bad}, lookup); err == nil {
			t.Errorf("-e %q: no error", bad)
		}
	}
}
