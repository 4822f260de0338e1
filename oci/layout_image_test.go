package oci

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestImportLayoutImage(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	app := makeImage(t, s, "app:v1", map[string]string{"a": "1"})
	other := makeImage(t, s, "other:v2", map[string]string{"b": "2"})
	dir := filepath.Join(t.TempDir(), "layout")
	if err := s.Export(ctx, dir, FormatOCILayout, []*Image{app, other}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tag  string
		dgst digest.Digest
		want digest.Digest
		err  bool
	}{
		{tag: "v2", want: other.Descriptor.Digest},
		{tag: "app:v1", want: app.Descriptor.Digest},
		{dgst: app.Descriptor.Digest, want: app.Descriptor.Digest},
		{err: true},              // two images: name one
		{tag: "nope", err: true}, // no such tag
		{dgst: digest.FromString("x"), err: true},
	} {
		fresh := openStore(t)
		got, err := fresh.ImportLayoutImage(ctx, dir, c.tag, c.dgst)
		if c.err {
			if err == nil {
				t.Errorf("tag %q dgst %q: no error", c.tag, c.dgst)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("tag %q dgst %q = %s, %v; want %s", c.tag, c.dgst, got, err, c.want)
			continue
		}
		img, err := fresh.Resolve(ctx, got.String())
		if err != nil || img.Descriptor.Digest != c.want {
			t.Errorf("resolve the imported %s: %v", got, err)
		}
		if imgs, _ := fresh.Images(ctx); len(imgs) != 0 {
			t.Errorf("the import tagged %d images, want none", len(imgs))
		}
	}
	if _, err := s.ImportLayoutImage(ctx, t.TempDir(), "", ""); err == nil {
		t.Error("not a layout: no error")
	}
}
