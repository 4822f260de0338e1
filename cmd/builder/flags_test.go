package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/builderdev/builder/client"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		in   string
		want client.Output
		err  bool
	}{
		{"type=oci,dest=out.tar", client.Output{Type: "oci", Dest: "out.tar"}, false},
		{"type=docker,dest=d.tar", client.Output{Type: "docker", Dest: "d.tar"}, false},
		{"type=oci-layout,dest=dir", client.Output{Type: "oci-layout", Dest: "dir"}, false},
		{"type=local,dest=rootfs", client.Output{Type: "local", Dest: "rootfs"}, false},
		{"rootfs", client.Output{Type: "local", Dest: "rootfs"}, false},
		{"type=image,name=reg/app:v1,push=true", client.Output{Type: "image", Dest: "reg/app:v1", Push: true}, false},
		{"type=registry,name=reg/app:v1", client.Output{Type: "image", Dest: "reg/app:v1", Push: true}, false},
		{"type=tar,dest=x", client.Output{Type: "tar", Dest: "x"}, false},
		{"type=oci,dest=-", client.Output{Type: "oci", Dest: "-"}, false},
		{"-", client.Output{Type: "tar", Dest: "-"}, false},
		{"type=local,dest=-", client.Output{}, true},
		{"type=oci-layout,dest=-", client.Output{}, true},
		{"type=tarball,dest=x", client.Output{}, true},
		{"type=oci", client.Output{}, true},
		{"type=oci,dest=x,bogus=1", client.Output{}, true},
		{"type=oci,dest=x,push=true", client.Output{}, true},
		{"type=image,name=a,push=maybe", client.Output{}, true},
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
	tests := []struct {
		name    string
		flag    string
		args    map[string]string
		want    int64 // -1: error
		wantArg string
	}{
		{name: "from env", args: map[string]string{}, want: 100, wantArg: "100"},
		{name: "build arg wins over env", args: map[string]string{"SOURCE_DATE_EPOCH": "7"}, want: 7, wantArg: "7"},
		{name: "flag wins over all", flag: "5", args: map[string]string{"SOURCE_DATE_EPOCH": "7"}, want: 5, wantArg: "5"},
		{name: "not a number", args: map[string]string{"SOURCE_DATE_EPOCH": "soon"}, want: -1},
		{name: "negative", flag: "-3", args: map[string]string{}, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sourceDateEpoch(tt.flag, tt.args)
			if tt.want < 0 {
				if err == nil {
					t.Fatalf("accepted: %v", got)
				}
				return
			}
			if err != nil || got == nil || got.Unix() != tt.want {
				t.Fatalf("got %v, %v; want %d", got, err, tt.want)
			}
			if tt.args["SOURCE_DATE_EPOCH"] != tt.wantArg {
				t.Errorf("build arg SOURCE_DATE_EPOCH = %q, want %q (ARG SOURCE_DATE_EPOCH must see it)", tt.args["SOURCE_DATE_EPOCH"], tt.wantArg)
			}
		})
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if got, err := sourceDateEpoch("", map[string]string{}); got != nil || err != nil {
		t.Errorf("unset: %v, %v", got, err)
	}
}
