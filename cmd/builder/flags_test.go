package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/builderdev/builder/executor"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		in   string
		want executor.Output
		err  bool
	}{
		{"type=oci,dest=out.tar", executor.Output{Type: "oci", Dest: "out.tar"}, false},
		{"type=docker,dest=d.tar", executor.Output{Type: "docker", Dest: "d.tar"}, false},
		{"type=oci-layout,dest=dir", executor.Output{Type: "oci-layout", Dest: "dir"}, false},
		{"type=local,dest=rootfs", executor.Output{Type: "local", Dest: "rootfs"}, false},
		{"rootfs", executor.Output{Type: "local", Dest: "rootfs"}, false},
		{"type=image,name=reg/app:v1,push=true", executor.Output{Type: "image", Dest: "reg/app:v1", Push: true}, false},
		{"type=registry,name=reg/app:v1", executor.Output{Type: "image", Dest: "reg/app:v1", Push: true}, false},
		{"type=tar,dest=x", executor.Output{}, true},
		{"type=oci", executor.Output{}, true},
		{"type=oci,dest=x,bogus=1", executor.Output{}, true},
		{"type=oci,dest=x,push=true", executor.Output{}, true},
		{"type=image,name=a,push=maybe", executor.Output{}, true},
	}
	for _, tt := range tests {
		got, err := parseOutput(tt.in)
		if tt.err {
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("parseOutput(%q) = %v, %v; want a usage error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseOutput(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBuildArgs(t *testing.T) {
	t.Setenv("FROM_ENV", "env-value")
	got, err := parseBuildArgs([]string{"A=1", "B=", "C=x=y", "FROM_ENV", "UNSET_IN_ENV_XYZ"})
	want := map[string]string{"A": "1", "B": "", "C": "x=y", "FROM_ENV": "env-value"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseBuildArgs = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"=x", "", "A B=1"} {
		if _, err := parseBuildArgs([]string{bad}); err == nil {
			t.Errorf("parseBuildArgs(%q) accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := map[string]int64{"512": 512, "10kB": 10_000, "1.5GB": 1_500_000_000, "2g": 2_000_000_000, "100MiB": 100 << 20, "0": 0}
	for in, want := range tests {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "-1GB", "1XB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "100")
	if got, err := sourceDateEpoch(nil); err != nil || got == nil || got.Unix() != 100 {
		t.Errorf("from env: %v, %v", got, err)
	}
	if got, err := sourceDateEpoch(map[string]string{"SOURCE_DATE_EPOCH": "7"}); err != nil || got.Unix() != 7 {
		t.Errorf("build arg wins: %v, %v", got, err)
	}
	if _, err := sourceDateEpoch(map[string]string{"SOURCE_DATE_EPOCH": "soon"}); err == nil {
		t.Error("non-numeric accepted")
	}
}
