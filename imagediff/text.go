package imagediff

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTextFiles caps the file lines of one layer in WriteText.
const maxTextFiles = 100

// WriteText prints the report for people: one line per differing field,
// a block per differing layer (file lines capped at 100 per layer) and a
// count. Names, paths and values with control characters are quoted.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Identical {
		fmt.Fprintf(&b, "identical: %s\n", r.A.Manifest)
	} else {
		r.writeDiffs(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeDiffs(b *strings.Builder) {
	for _, s := range []struct {
		label string
		side  Side
	}{{"a", r.A}, {"b", r.B}} {
		name := ""
		if s.side.Name != "" {
			name = printable(s.side.Name) + " "
		}
		fmt.Fprintf(b, "%s: %s%s\n", s.label, name, s.side.Manifest)
	}
	writeFields(b, "manifest", r.Manifest)
	writeFields(b, "config", r.Config)
	for i := range r.Layers {
		writeLayer(b, &r.Layers[i])
	}
	paths := 0
	for _, l := range r.Layers {
		paths += len(l.Files)
	}
	fmt.Fprintf(b, "differ: %s, %s, %s (%s)\n", count(len(r.Manifest), "manifest field"),
		count(len(r.Config), "config field"), count(len(r.Layers), "layer"), count(paths, "path"))
}

// count is "1 layer", "2 layers".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func writeFields(b *strings.Builder, title string, fields []FieldDiff) {
	if len(fields) == 0 {
		return
	}
	fmt.Fprintf(b, "%s:\n", title)
	for _, f := range fields {
		fmt.Fprintf(b, "  %s: %s != %s\n", f.Path, rawOrNone(f.A), rawOrNone(f.B))
	}
}

func rawOrNone(v json.RawMessage) string {
	if v == nil {
		return "(none)"
	}
	return string(v)
}

func writeLayer(b *strings.Builder, l *LayerDiff) {
	head := fmt.Sprintf("layer %d", l.Index)
	switch {
	case l.A == nil:
		head += " of b"
	case l.B != nil && l.IndexB != l.Index:
		head += fmt.Sprintf(" (layer %d of b)", l.IndexB)
	}
	if l.Step != "" {
		head += " (" + printable(l.Step) + ")"
	}
	switch {
	case l.A == nil && l.B == nil:
		fmt.Fprintf(b, "%s: in neither image\n", head)
	case l.A == nil:
		fmt.Fprintf(b, "%s: only in b (%s)%s\n", head, l.B.Digest, spaced(l.B.CreatedBy))
	case l.B == nil:
		fmt.Fprintf(b, "%s: only in a (%s)%s\n", head, l.A.Digest, spaced(l.A.CreatedBy))
	case l.SameContent:
		fmt.Fprintf(b, "%s: same content, different compression (%s != %s)\n", head, l.A.Digest, l.B.Digest)
	default:
		createdBy := l.A.CreatedBy
		if createdBy == "" {
			createdBy = l.B.CreatedBy
		}
		fmt.Fprintf(b, "%s%s\n", head, spaced(createdBy))
		fmt.Fprintf(b, "  %s != %s\n", l.A.Digest, l.B.Digest)
		if l.Order {
			b.WriteString("  same entries in a different order\n")
		}
		if l.Encoding {
			b.WriteString("  same entries in the same order, different tar bytes (padding or header encoding)\n")
		}
		for i, f := range l.Files {
			if i == maxTextFiles {
				fmt.Fprintf(b, "  … and %d more (--format json lists all)\n", len(l.Files)-i)
				break
			}
			writeFile(b, f)
		}
	}
}

func writeFile(b *strings.Builder, f FileDiff) {
	fmt.Fprintf(b, "  %s %s", f.Change, printable(f.Path))
	for i, a := range f.Attrs {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(b, "%s%s %s != %s", sep, printable(a.Name), valueOrNone(a.A), valueOrNone(a.B))
	}
	b.WriteString("\n")
}

func valueOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return printable(s)
}

// spaced returns " s" for a non-empty s, made printable.
func spaced(s string) string {
	if s == "" {
		return ""
	}
	return " " + printable(s)
}

// printable quotes s when it holds control characters or invalid UTF-8, so
// that a hostile name cannot forge report lines.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) {
		return s
	}
	return strconv.Quote(s)
}
