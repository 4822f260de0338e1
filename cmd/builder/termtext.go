package main

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Text for a terminal: lines cut to a width in cells, and program output
// made safe to draw (used by the tty progress view).

// twoColumns is a line whose right part ends at the terminal's last
// usable column; cut lays it out.
func twoColumns(left, right string) string {
	return cleanLine([]byte(left)) + "\x00" + right
}

// cut fits l in cols-1 cells (the last column stays empty: a line that
// fills it wraps on some terminals). A two-column line is padded to that
// width; when it does not fit, the end of its left part goes first.
func cut(l string, cols int) string {
	if cols <= 1 {
		cols = 80
	}
	limit := cols - 1
	left, right, two := strings.Cut(l, "\x00")
	if !two {
		return cutCells(l, limit)
	}
	switch pad := limit - cells(left) - cells(right); {
	case pad >= 1:
		return left + strings.Repeat(" ", pad) + right
	case cells(right)+5 <= limit:
		return cutCells(left, limit-cells(right)-4) + "... " + right
	}
	return cutCells(left+" "+right, limit)
}

// cutCells keeps the longest prefix of s that fits in n cells.
func cutCells(s string, n int) string {
	w := 0
	for i, r := range s {
		w += runeCells(r)
		if w > n {
			return s[:i]
		}
	}
	return s
}

func cells(s string) int {
	n := 0
	for _, r := range s {
		n += runeCells(r)
	}
	return n
}

// runeCells is the cells a rune takes: 2 for the wide East Asian and emoji
// ranges, else 1 (never less: a line estimated too long is only cut
// earlier, one estimated too short would wrap).
func runeCells(r rune) int {
	switch {
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0xa4cf, r >= 0xac00 && r <= 0xd7a3,
		r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f, r >= 0xff00 && r <= 0xff60,
		r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300 && r <= 0x1f64f, r >= 0x1f900 && r <= 0x1f9ff,
		r >= 0x20000 && r <= 0x3fffd:
		return 2
	}
	return 1
}

// cleanLine makes a line of program output safe to draw: what follows the
// last carriage return (a progress bar's latest state), tabs as spaces,
// escape sequences and other control characters dropped, invalid UTF-8
// replaced.
func cleanLine(b []byte) string {
	if i := bytes.LastIndexByte(bytes.TrimRight(b, "\r"), '\r'); i >= 0 {
		b = b[i+1:]
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		i += n
		switch {
		case r == '\t':
			sb.WriteString("    ")
		case r == 0x1b:
			i = skipEscape(b, i)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// skipEscape returns the index after the escape sequence that starts
// before i (CSI "ESC [ ... final", OSC "ESC ] ... BEL|ST", or ESC x).
func skipEscape(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '[':
		for i++; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']':
		for i++; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	}
	return i + 1
}
