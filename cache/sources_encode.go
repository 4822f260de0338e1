package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
)

// appendSourceEntry appends e as one line exactly as json.Encoder writes it
// (the digest format predates this encoder; TestAppendSourceEntry checks
// that both agree), with the sha256 of a regular file as its digest. One
// Encode per file was a third of a fully cached COPY of 50,000 files.
func appendSourceEntry(b []byte, e *sourceEntry, sum *[sha256.Size]byte) []byte {
	b = append(b, `{"dest":`...)
	b = appendJSONString(b, e.Dest)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"mode":`...)
	b = strconv.AppendUint(b, uint64(e.Mode), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(e.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(e.GID), 10)
	if e.Link != "" {
		b = append(b, `,"link":`...)
		b = appendJSONString(b, e.Link)
	}
	if e.Hardlink != "" {
		b = append(b, `,"hardlink":`...)
		b = appendJSONString(b, e.Hardlink)
	}
	if e.Major != 0 {
		b = append(b, `,"major":`...)
		b = strconv.AppendUint(b, uint64(e.Major), 10)
	}
	if e.Minor != 0 {
		b = append(b, `,"minor":`...)
		b = strconv.AppendUint(b, uint64(e.Minor), 10)
	}
	if sum != nil {
		b = append(b, `,"digest":"sha256:`...)
		b = hex.AppendEncode(b, sum[:])
		b = append(b, '"')
	} else if e.Digest != "" {
		b = append(b, `,"digest":`...)
		b = appendJSONString(b, string(e.Digest))
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s quoted as encoding/json quotes it: plain
// printable ASCII is copied, anything else goes through json.Marshal (which
// escapes <, >, &, control bytes, U+2028/U+2029 and invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
