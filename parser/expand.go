package parser

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Expansion bounds. BuildKit's shell.Lex expands without limit: 40 lines of
// ARG aN=${aN-1}${aN-1} double a value 40 times (1 TiB), and
// ${a//?/${a}} squares one. So every word is checked before it is
// expanded, against a bound computed from the sizes of the variables it
// names, and after; each value ARG or ENV sets is a checked word, so the
// doubling stops at the line where a value would pass 1 MiB. Memory stays
// within a few times maxInstruction whatever the Dockerfile. The limits
// apply to growth: a word that expansion does not make longer (a long
// heredoc written out in the Dockerfile) is never refused.
const (
	maxWord        = 1 << 20  // one expanded word; so one ARG or ENV value
	maxInstruction = 8 << 20  // all the expanded words of one instruction
	maxScope       = 16 << 20 // all the ARG and ENV values in scope
)

// ErrExpansion is wrapped by the errors of a crossed expansion bound.
var ErrExpansion = errors.New("expansion too large")

// Expander expands the words of one instruction within the bounds.
type Expander struct {
	lex     *shell.Lex
	env     shell.EnvGetter
	in, out int64 // bytes of the words given and of their expansions
}

// NewExpander expands words with lex, seeing env.
func NewExpander(lex *shell.Lex, env Vars) *Expander {
	return &Expander{lex: lex, env: scopeGetter(env)}
}

// scopeGetter looks variables up in a scope as Vars.Getter does, without
// copying every value into a map first: with values of up to maxWord, a
// copy per instruction would dominate the cost of a Dockerfile.
type scopeGetter Vars

func (g scopeGetter) Get(key string) (string, bool) {
	key = shell.NormalizeEnvKey(key)
	for i := len(g) - 1; i >= 0; i-- {
		if shell.NormalizeEnvKey(g[i].K) == key {
			return g[i].V, true
		}
	}
	return "", false
}

func (g scopeGetter) Keys() []string {
	keys := make([]string, len(g))
	for i, e := range g {
		keys[i] = e.K
	}
	return keys
}

// Word expands one word.
func (x *Expander) Word(w string) (string, error) {
	v, _, err := x.word(w)
	return v, err
}

// word expands one word and returns the names it refers to that are not
// set (the build checks' UndefinedVar).
func (x *Expander) word(w string) (string, map[string]struct{}, error) {
	if err := x.check(w); err != nil {
		return "", nil, err
	}
	v, unset, err := x.lex.ProcessWord(w, x.env)
	if err != nil {
		return "", nil, err
	}
	return v, unset, x.account(w, int64(len(v)))
}

// Words expands w into words (EXPOSE).
func (x *Expander) Words(w string) ([]string, error) {
	if err := x.check(w); err != nil {
		return nil, err
	}
	vs, err := x.lex.ProcessWords(w, x.env)
	if err != nil {
		return nil, err
	}
	var n int64
	for _, v := range vs {
		n += int64(len(v))
	}
	return vs, x.account(w, n)
}

// account adds an expansion of n bytes of the word w to the instruction's
// total and checks both against their bounds.
func (x *Expander) account(w string, n int64) error {
	if n > maxWord && n > int64(len(w)) {
		return fmt.Errorf("expand %q: %w: %s, more than the %s a word may take", short(w), ErrExpansion, mib(n), mib(maxWord))
	}
	x.in += int64(len(w))
	x.out += n
	if x.out > maxInstruction && x.out > x.in {
		return fmt.Errorf("expand %q: %w: the instruction's words take %s, more than %s", short(w), ErrExpansion, mib(x.out), mib(maxInstruction))
	}
	return nil
}

// varRefs calls f for each variable reference in w as shell.Lex reads
// one: $name, ${name...}, $1, ${@}, saying whether it is braced and
// followed by "//" (${name//pattern/repl}). Escaped ones count too: the
// bound only has to be an upper one. It finds what the regular expression
//
//	\$(\{)?([\p{L}_][\p{L}\p{Nd}_]*|\p{Nd}+|[@*#?$!-])(//?)?
//
// finds (TestVarRefs checks both agree), without compiling it at start-up
// (compiling its Unicode classes took 0.4 ms, a tenth of `builder --help`).
func varRefs(w string, f func(name string, braced, replaceAll bool)) {
	for i := 0; i < len(w); {
		j := strings.IndexByte(w[i:], '$')
		if j < 0 {
			return
		}
		i += j
		k := i + 1
		braced := k < len(w) && w[k] == '{'
		if braced {
			k++
		}
		end := k
		if k < len(w) {
			r, size := utf8.DecodeRuneInString(w[k:])
			switch {
			case unicode.IsLetter(r) || r == '_':
				end = k + size
				for end < len(w) {
					r, size := utf8.DecodeRuneInString(w[end:])
					if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
						break
					}
					end += size
				}
			case unicode.IsDigit(r):
				end = k + size
				for end < len(w) {
					r, size := utf8.DecodeRuneInString(w[end:])
					if !unicode.IsDigit(r) {
						break
					}
					end += size
				}
			case strings.IndexByte("@*#?$!-", w[k]) >= 0:
				end = k + 1
			}
		}
		if end == k {
			i++ // no reference at this $
			continue
		}
		name := w[k:end]
		replaceAll := false
		if end < len(w) && w[end] == '/' {
			end++
			if end < len(w) && w[end] == '/' {
				end++
				replaceAll = true
			}
		}
		f(name, braced, replaceAll)
		i = end
	}
}

// check refuses a word whose expansion could grow it by more than
// maxInstruction, before expanding it. Without ${name//pattern/repl} the
// result is at most the word plus every value it refers to. A replace-all
// of a value v by repl gives at most |v| + (|v|+1)·|repl|, where repl is
// made of the rest of the word and the rest of its values.
func (x *Expander) check(w string) error {
	total := int64(len(w)) // the word and every value it names
	var replaced []int64   // sizes of the values replaced by ${name//...}
	refs := 0
	varRefs(w, func(name string, braced, replaceAll bool) {
		refs++
		v, _ := x.env.Get(name)
		total = addSat(total, int64(len(v)))
		if braced && replaceAll {
			replaced = append(replaced, int64(len(v)))
		}
	})
	if refs == 0 {
		return nil
	}
	bound := total
	switch len(replaced) {
	case 0:
	case 1:
		v := replaced[0]
		bound = addSat(v, mulSat(v+1, total-v))
	default:
		for _, v := range replaced {
			bound = mulSat(bound, v+2)
		}
	}
	if bound-int64(len(w)) > maxInstruction {
		return fmt.Errorf("expand %q: %w: the values it names could make it %s, more than %s", short(w), ErrExpansion, mib(bound), mib(maxInstruction))
	}
	return nil
}

// CheckVars refuses to set variables (an ARG or ENV line) when the values
// in scope would take more than maxScope, however many lines set them.
func CheckVars(s Vars, set ...Var) error {
	var n int64
	for _, e := range s {
		n += int64(len(e.K) + len(e.V))
	}
	for _, e := range set {
		n += int64(len(e.K) + len(e.V))
	}
	if n > maxScope {
		return fmt.Errorf("set %s: %w: the variables in scope would take %s, more than %s", set[0].K, ErrExpansion, mib(n), mib(maxScope))
	}
	return nil
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// short is a word as an error quotes it.
func short(w string) string { return Shorten(w) }

// mib prints a size for an expansion error.
func mib(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// SetLex makes x expand the words that follow with lex (heredoc bodies use
// a lexer of their own) within the same bounds.
func (x *Expander) SetLex(lex *shell.Lex) { x.lex = lex }
