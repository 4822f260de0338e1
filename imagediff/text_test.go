package imagediff

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenImages builds a pair of images with one of each kind of difference.
func goldenImages(t *testing.T) (Image, Image, Options) {
	t.Helper()
	blobs := memBlobs{}
	l0 := gzipOf(t, tarOf(t, dir("./"), dir("etc/"), reg("etc/passwd", "root:x:0:0\n")))
	l1 := tarOf(t, reg("app", "binary"))
	var many, manyChanged []file
	for i := range 105 {
		f := reg(fmt.Sprintf("lib/%03d.so", i), "x")
		many = append(many, f)
		manyChanged = append(manyChanged, f.with(func(h *tar.Header) { h.ModTime = t0.AddDate(0, 0, 1) }))
	}
	ab := tarOf(t, reg("a", "1"), reg("b", "2"))
	createdBy := []string{"COPY rootfs /", "COPY app /app", "RUN /bin/sh -c date > /stamp # buildkit", "RUN ldconfig",
		"COPY a b /", "COPY padded /", "RUN <<EOF\nmake\nEOF"}
	a := spec{
		layers: [][]byte{l0, gzipOf(t, l1), gzipOf(t, tarOf(t, reg("old", "o"), reg("stamp", "Wed Nov 26 09:00:00 UTC 2026\n"))), gzipOf(t, tarOf(t, many...)),
			gzipOf(t, ab), gzipOf(t, ab)},
		createdBy: createdBy,
		editConfig: func(cfg map[string]any) {
			cfg["config"].(map[string]any)["Cmd"] = nil
		},
	}.build(t, blobs, "app:v1")
	b := spec{
		layers: [][]byte{l0, zstdOf(t, l1),
			gzipOf(t, tarOf(t, reg("stamp", "Wed Nov 26 09:05:00 UTC 2026\n"), reg("new", "n"), reg("evil\nname", ""))),
			gzipOf(t, tarOf(t, manyChanged...)),
			gzipOf(t, tarOf(t, reg("b", "2"), reg("a", "1"))),
			gzipOf(t, append(bytes.Clone(ab), make([]byte, 512)...)),
			gzipOf(t, tarOf(t, reg("out", "1"), reg("in", "2")))},
		createdBy: createdBy,
		editConfig: func(cfg map[string]any) {
			cfg["created"] = "2026-11-26T09:05:00Z"
			c := cfg["config"].(map[string]any)
			c["Env"] = append(c["Env"].([]any), "A=1")
			delete(c, "Cmd")
		},
	}.build(t, blobs, "app:v2")
	return a, b, Options{Steps: []string{"Dockerfile:2", "Dockerfile:3", "Dockerfile:4"}}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./imagediff -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./imagediff -update and review the diff)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestWriteTextGolden(t *testing.T) {
	a, b, opts := goldenImages(t)
	var first []byte
	for i := range 3 { // map order must not leak into the output
		r, err := Compare(context.Background(), a, b, opts)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = buf.Bytes()
			checkGolden(t, "report.golden", first)
			var js bytes.Buffer
			enc := json.NewEncoder(&js)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "report.json.golden", js.Bytes())
		} else if !bytes.Equal(buf.Bytes(), first) {
			t.Fatalf("run %d printed another report:\n%s", i, buf.Bytes())
		}
	}

	r, err := Compare(context.Background(), a, a, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "identical.golden", buf.Bytes())
}

func TestReportJSONRoundTrip(t *testing.T) {
	a, b, opts := goldenImages(t)
	r, err := Compare(context.Background(), a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, again) {
		t.Errorf("JSON changed on a round trip\nbefore: %s\nafter:  %s", js, again)
	}
	// json.Marshal escapes <>& inside the raw values: compare those as JSON.
	want := *r
	want.Manifest, want.Config = canonicalFields(t, r.Manifest), canonicalFields(t, r.Config)
	back.Manifest, back.Config = canonicalFields(t, back.Manifest), canonicalFields(t, back.Config)
	if !reflect.DeepEqual(want, back) {
		t.Errorf("round trip changed the report\nbefore: %+v\nafter:  %+v", want, back)
	}
	// A null value stays distinct from an absent one.
	var cmd *FieldDiff
	for i := range back.Config {
		if back.Config[i].Path == "config.Cmd" {
			cmd = &back.Config[i]
		}
	}
	if cmd == nil || string(cmd.A) != "null" || cmd.B != nil {
		t.Errorf("config.Cmd: %+v", cmd)
	}
	if !strings.Contains(string(js), `"path":"config.Cmd","a":null}`) {
		t.Errorf("JSON of config.Cmd: %s", js)
	}
}

// canonicalFields re-encodes the values of fs as rawJSON does.
func canonicalFields(t *testing.T, fs []FieldDiff) []FieldDiff {
	t.Helper()
	out := slices.Clone(fs)
	for i := range out {
		for _, v := range []*json.RawMessage{&out[i].A, &out[i].B} {
			if *v == nil {
				continue
			}
			doc, err := decodeJSON(*v)
			if err != nil {
				t.Fatal(err)
			}
			if *v, err = rawJSON(doc); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}
