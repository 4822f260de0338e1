package main

import "github.com/spf13/pflag"

// stringsValue is a repeatable string flag with pflag's stringArray
// semantics (each use appends one value, commas are not split) that costs
// nothing to define: pflag's own type renders its empty default through
// encoding/csv for every flag at start-up, which a command line of twenty
// such flags paid on every run.
type stringsValue struct{ p *[]string }

func (v stringsValue) Set(s string) error { *v.p = append(*v.p, s); return nil }

// Type names the value in help as pflag's stringArray does.
func (v stringsValue) Type() string { return "stringArray" }

// String is "" for no values, so help prints no default.
func (v stringsValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	s := "["
	for i, e := range *v.p {
		if i > 0 {
			s += ","
		}
		s += e
	}
	return s + "]"
}

// stringsVarP defines a repeatable string flag on fl, as
// fl.StringArrayVarP(p, name, short, nil, usage).
func stringsVarP(fl *pflag.FlagSet, p *[]string, name, short, usage string) {
	fl.VarP(stringsValue{p}, name, short, usage)
}
