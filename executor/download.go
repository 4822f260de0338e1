package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/layer"
	"github.com/opencontainers/go-digest"
)

// download fetches an ADD URL into the build's temp dir (mode 0600, mtime
// from Last-Modified as Docker does) and checks --checksum. With unpack, an
// archive is extracted.
func (bd *build) download(ctx context.Context, rawURL, checksum string, unpack bool) ([]copyItem, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("unsupported URL %q", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %s", rawURL, resp.Status)
	}
	// The file is named after the URL path only, as BuildKit does.
	name := path.Base(u.Path)
	if name == "" || name == "/" || name == "." || name == ".." {
		name = "__unnamed__"
	}
	dir, err := bd.tmp.mkdirTemp("dl-")
	if err != nil {
		return nil, err
	}
	host := filepath.Join(dir, name)
	f, err := os.OpenFile(host, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	if checksum != "" {
		want, err := digest.Parse(checksum)
		if err != nil {
			return nil, fmt.Errorf("invalid --checksum %q: %w", checksum, err)
		}
		if want != got {
			return nil, fmt.Errorf("checksum mismatch for %s: expected %s, got %s", rawURL, want, got)
		}
	}
	mtime := bd.clock.fileTime()
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm.UTC()
	}
	if err := os.Chtimes(host, mtime, mtime); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return nil, err
	}
	d := &downloadSource{url: rawURL, content: got, mtime: mtime}
	tree := fileset.Dir(dir)
	if ok, _ := layer.IsArchive(host); unpack && ok {
		d.file = &archiveSource{fsys: tree, path: "/" + name}
		return []copyItem{{src: d}}, nil
	}
	d.file = &treeSource{sel: &fileset.Selection{FS: tree}, m: fileset.Match{Path: "/" + name, Info: fi, Matched: "/" + name, DestRel: name}, mode: 0o600}
	return []copyItem{{destRel: name, src: d}}, nil
}
