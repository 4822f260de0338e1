//go:build linux

package conformance

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/builderdev/builder/layer"
)

// A summary is the normalized result of one build: "key: value" lines with
// unique keys, so two summaries compare key by key. Keys:
//
//	error.exit / error.line / error.code   a failed build: the CLI's exit
//	                                       status, the Dockerfile line named,
//	                                       the failing RUN's exit code
//	architecture, created, os, ...         top-level config fields
//	config.FIELD                           every field of the config object
//	history[i]                             created_by, empty_layer, comment, created
//	diff_ids                               the number of layers
//	layer[i] /PATH                         one tar entry of layer i, for every
//	                                       layer that is not in the base image
type summary struct {
	note string // a comment written above the lines (not compared)
	keys []string
	vals map[string]string
}

func (s *summary) add(k, v string) {
	if s.vals == nil {
		s.vals = map[string]string{}
	}
	key := k
	for n := 2; ; n++ {
		if _, dup := s.vals[key]; !dup {
			break
		}
		key = fmt.Sprintf("%s #%d", k, n)
	}
	s.keys = append(s.keys, key)
	s.vals[key] = v
}

func (s *summary) String() string {
	var b strings.Builder
	for _, l := range strings.Split(s.note, "\n") {
		if l != "" {
			fmt.Fprintf(&b, "# %s\n", l)
		}
	}
	for _, k := range s.keys {
		fmt.Fprintf(&b, "%s: %s\n", k, s.vals[k])
	}
	return b.String()
}

func parseSummary(text string) (*summary, error) {
	s := &summary{vals: map[string]string{}}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		if c, ok := strings.CutPrefix(line, "# "); ok {
			if !strings.HasPrefix(c, "BuildKit's result") {
				s.note += c + "\n"
			}
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("line %d: no \": \" in %q", i+1, line)
		}
		s.keys = append(s.keys, k)
		s.vals[k] = v
	}
	return s, nil
}

var (
	reRef      = regexp.MustCompile(`ref [a-z0-9]+::[a-z0-9]+`)
	reMount    = regexp.MustCompile(`(/[^\s/]+)+/cachemounts/[^\s/]+`)
	reSnippet  = regexp.MustCompile(`(?m)^Dockerfile:(\d+)(?:-\d+)?\s*$`)
	reLine     = regexp.MustCompile(`Dockerfile:(\d+)`)
	reLineAlt  = regexp.MustCompile(`(?i)line (\d+)`)
	reExitCode = regexp.MustCompile(`exit code:? (\d+)`)
)

// errorSummary normalizes a failed build: exit status, line, RUN exit code.
func errorSummary(exit int, stderr string) *summary {
	s := &summary{note: errorMessage(stderr)}
	s.add("error.exit", strconv.Itoa(exit))
	// The line is the one the source snippet shows (both tools print one
	// after a failure; warnings may name other lines before it), else the
	// first one the error message names.
	line := "none"
	if m := reSnippet.FindAllStringSubmatch(stderr, -1); m != nil {
		line = m[len(m)-1][1]
	} else if m := reLine.FindStringSubmatch(s.note); m != nil {
		line = m[1]
	} else if m := reLineAlt.FindStringSubmatch(s.note); m != nil {
		line = m[1]
	}
	s.add("error.line", line)
	code := "none"
	if m := reExitCode.FindStringSubmatch(stderr); m != nil {
		code = m[1]
	}
	s.add("error.code", code)
	return s
}

// errorMessage returns the lines of stderr that say what failed.
func errorMessage(stderr string) string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "ERROR:") || strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "Error:") {
			l = reRef.ReplaceAllString(l, "ref ...")
			l = reMount.ReplaceAllString(l, "<mount>")
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ociArchive is an OCI image layout read from a tar into memory.
type ociArchive map[string][]byte

func readOCIArchive(file string) (ociArchive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := ociArchive{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		a[path.Clean(h.Name)] = data
	}
}

func (a ociArchive) blob(d string) ([]byte, error) {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return nil, fmt.Errorf("bad digest %q", d)
	}
	b, ok := a["blobs/"+alg+"/"+hex]
	if !ok {
		return nil, fmt.Errorf("blob %s missing", d)
	}
	return b, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

// image returns the manifest's config and layers (following one index level).
func (a ociArchive) image() (config []byte, layers []descriptor, err error) {
	var idx struct{ Manifests []descriptor }
	if err := json.Unmarshal(a["index.json"], &idx); err != nil {
		return nil, nil, fmt.Errorf("decode index.json: %w", err)
	}
	for depth := 0; ; depth++ {
		if len(idx.Manifests) != 1 || depth > 2 {
			return nil, nil, fmt.Errorf("want one manifest, index has %d", len(idx.Manifests))
		}
		raw, err := a.blob(idx.Manifests[0].Digest)
		if err != nil {
			return nil, nil, err
		}
		var m struct {
			Manifests []descriptor
			Config    descriptor
			Layers    []descriptor
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, nil, err
		}
		if m.Manifests != nil {
			idx.Manifests = m.Manifests
			continue
		}
		config, err = a.blob(m.Config.Digest)
		return config, m.Layers, err
	}
}

// imageSummary summarizes the image in an OCI archive; the base image's
// layers are counted but not listed. The base image reference in file
// contents (a Dockerfile copied into the image) is written as the
// placeholder, so it does not depend on the registry; a file with the
// content of a base image file is named by that file, so the summary does
// not depend on the bytes of the host's busybox.
func imageSummary(ctx context.Context, file string, base baseInfo) (*summary, error) {
	a, err := readOCIArchive(file)
	if err != nil {
		return nil, err
	}
	raw, layers, err := a.image()
	if err != nil {
		return nil, err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	s := &summary{}
	for _, k := range sortedKeys(cfg) {
		switch k {
		case "config", "history", "rootfs":
		default:
			s.add(k, canonical(cfg[k]))
		}
	}
	var inner map[string]json.RawMessage
	if c, ok := cfg["config"]; ok && string(c) != "null" {
		if err := json.Unmarshal(c, &inner); err != nil {
			return nil, fmt.Errorf("decode config.config: %w", err)
		}
	}
	for _, k := range sortedKeys(inner) {
		s.add("config."+k, canonical(inner[k]))
	}
	var rest struct {
		History []struct {
			Created    string `json:"created"`
			CreatedBy  string `json:"created_by"`
			Comment    string `json:"comment"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &rest); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	for i, h := range rest.History {
		s.add(fmt.Sprintf("history[%d]", i), fmt.Sprintf("created_by=%q empty_layer=%v comment=%q created=%s",
			h.CreatedBy, h.EmptyLayer, h.Comment, h.Created))
	}
	s.add("diff_ids", strconv.Itoa(len(rest.RootFS.DiffIDs)))
	if len(layers) != len(rest.RootFS.DiffIDs) {
		s.add("layers", fmt.Sprintf("%d in the manifest", len(layers)))
	}
	for i, l := range layers {
		if i < len(rest.RootFS.DiffIDs) && base.diffIDs[rest.RootFS.DiffIDs[i]] {
			continue
		}
		blob, err := a.blob(l.Digest)
		if err != nil {
			return nil, err
		}
		if err := layerSummary(ctx, s, i, blob, base); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// canonical re-encodes a JSON value with sorted object keys and no spaces.
func canonical(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return string(raw)
	}
	return string(b)
}

// layerSummary adds one line per tar entry of a layer blob, sorted by path.
func layerSummary(ctx context.Context, s *summary, i int, blob []byte, base baseInfo) error {
	rc, err := layer.Decompress(bytes.NewReader(blob))
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	type line struct{ path, val string }
	var lines []line
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		lines = append(lines, line{"/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/"), entryLine(h, tr, base)})
	}
	sort.SliceStable(lines, func(a, b int) bool { return lines[a].path < lines[b].path })
	if len(lines) == 0 {
		s.add(fmt.Sprintf("layer[%d]", i), "empty")
	}
	for _, l := range lines {
		s.add(fmt.Sprintf("layer[%d] %s", i, l.path), l.val)
	}
	return nil
}

// baseFiles adds the sha256 of each regular file of a layer blob to files.
func baseFiles(blob []byte, files map[string]string) error {
	rc, err := layer.Decompress(bytes.NewReader(blob))
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		hash := sha256.New()
		if _, err := io.Copy(hash, tr); err != nil {
			return err
		}
		files[hex.EncodeToString(hash.Sum(nil))] = "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
	}
}

// entryLine describes one tar entry: type, mode, owner, then what the type
// has (content, link target, device numbers), mtime and xattrs.
func entryLine(h *tar.Header, r io.Reader, base baseInfo) string {
	var b strings.Builder
	typ := map[byte]string{
		tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "hardlink",
		tar.TypeChar: "char", tar.TypeBlock: "block", tar.TypeFifo: "fifo",
	}[h.Typeflag]
	if typ == "" {
		typ = fmt.Sprintf("type%q", h.Typeflag)
	}
	fmt.Fprintf(&b, "%s %04o %d:%d", typ, h.Mode&0o7777, h.Uid, h.Gid)
	switch h.Typeflag {
	case tar.TypeReg:
		data, _ := io.ReadAll(r)
		data = bytes.ReplaceAll(data, []byte(base.ref), []byte(basePlaceholder))
		sum := sha256.Sum256(data)
		if p, ok := base.files[hex.EncodeToString(sum[:])]; ok && len(data) > 400 {
			fmt.Fprintf(&b, " content-of-base=%s", p)
			break
		}
		fmt.Fprintf(&b, " size=%d sha256=%s", len(data), hex.EncodeToString(sum[:])[:16])
		if len(data) <= 400 && utf8.Valid(data) && !bytes.ContainsAny(data, "\x00\r") {
			fmt.Fprintf(&b, " text=%q", data)
		}
	case tar.TypeSymlink:
		fmt.Fprintf(&b, " -> %s", h.Linkname)
	case tar.TypeLink:
		fmt.Fprintf(&b, " => /%s", strings.TrimPrefix(path.Clean("/"+h.Linkname), "/"))
	case tar.TypeChar, tar.TypeBlock:
		fmt.Fprintf(&b, " dev=%d,%d", h.Devmajor, h.Devminor)
	}
	fmt.Fprintf(&b, " mtime=%d", h.ModTime.Unix())
	var xattrs []string
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			xattrs = append(xattrs, fmt.Sprintf("%s=%q", name, v))
		}
	}
	sort.Strings(xattrs)
	if len(xattrs) > 0 {
		fmt.Fprintf(&b, " xattrs=[%s]", strings.Join(xattrs, " "))
	}
	return b.String()
}
