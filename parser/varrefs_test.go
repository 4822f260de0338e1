package parser

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestVarRefs: the hand-written scanner finds exactly the references the
// regular expression it replaces finds, on chosen words and random ones.
func TestVarRefs(t *testing.T) {
	re := regexp.MustCompile(`\$(\{)?([\p{L}_][\p{L}\p{Nd}_]*|\p{Nd}+|[@*#?$!-])(//?)?`)
	want := func(w string) string {
		var b strings.Builder
		for _, m := range re.FindAllStringSubmatch(w, -1) {
			fmt.Fprintf(&b, "%s|%v|%v;", m[2], m[1] == "{", m[3] == "//")
		}
		return b.String()
	}
	got := func(w string) string {
		var b strings.Builder
		varRefs(w, func(name string, braced, replaceAll bool) {
			fmt.Fprintf(&b, "%s|%v|%v;", name, braced, replaceAll)
		})
		return b.String()
	}
	words := []string{"", "$", "$$", "${", "${}", "$a", "${a}", "${a//b/c}", "${a/b}", "$a//", "$1a", "${12}x",
		"\\$a", "$é_1٣", "$٣٤a", "${@}", "$-$!$?", "a$ b", "${{a}", "$\xff", "$a\xffb", "$_", "${a:-$b}", "x${y//$z/${w}}"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"$", "{", "}", "/", "a", "Z", "_", "1", "٣", "é", "@", "-", " ", "\xff", ":"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		words = append(words, b.String())
	}
	for _, w := range words {
		if g, e := got(w), want(w); g != e {
			t.Fatalf("varRefs(%q) = %s, the regexp finds %s", w, g, e)
		}
	}
}
