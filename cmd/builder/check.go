package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// runCheck is `build --check` (buildx's --call=check): the build checks
// run, nothing is built. Stdout gets "Check complete, N warnings have
// been found!" then each warning (rule, URL, message, the Dockerfile
// around it), in line order; or "Check complete, no warnings found.".
// Exit status as buildx: 0 without warnings, 1 with warnings; with check
// error=true (or a Dockerfile the checks could not finish) the error
// follows the warnings, exit 1.
func runCheck(cmd *cobra.Command, c *client.Client, opts client.BuildOptions) error {
	opts.Reporter = withoutLint{opts.Reporter} // the warnings go to stdout, once
	ws, err := c.Lint(cmd.Context(), opts)
	out := cmd.OutOrStdout()
	slices.SortStableFunc(ws, func(a, b client.CheckWarning) int { return a.Line - b.Line })
	switch len(ws) {
	case 0:
	case 1:
		fmt.Fprintln(out, "Check complete, 1 warning has been found!")
	default:
		fmt.Fprintf(out, "Check complete, %d warnings have been found!\n", len(ws))
	}
	for _, w := range ws {
		fmt.Fprintf(out, "\nWARNING: %s", w.Rule)
		if w.URL != "" {
			fmt.Fprintf(out, " - %s", w.URL)
		}
		fmt.Fprintf(out, "\n%s\n", w.Message)
		writeExcerptLines(out, opts.DockerfileName, w.Line, w.EndLine, opts.Dockerfile)
	}
	if err != nil {
		if len(ws) > 0 {
			fmt.Fprintln(out)
		}
		return excerptError{err, opts.Dockerfile}
	}
	if len(ws) == 0 {
		fmt.Fprintln(out, "Check complete, no warnings found.")
		return nil
	}
	return exitError{code: exitFail}
}

// withoutLint passes on every event but the build checks' warnings.
type withoutLint struct{ client.Reporter }

func (r withoutLint) Report(e client.Event) {
	if e.Kind != client.Lint {
		r.Reporter.Report(e)
	}
}

// CheckSummary lists the build checks' warnings once the build is over,
// as buildx does: " 2 warnings found (use builder --debug to expand):"
// then " - Rule: message (line N)"; with --debug, each with the rule's
// description, its URL and the Dockerfile around it.
func (p *plainProgress) CheckSummary(debug bool, file string, dockerfile []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	writeCheckSummary(p.w, p.checks, debug, file, dockerfile)
}

// CheckSummary of the live view: written below it, once it is over.
func (p *ttyProgress) CheckSummary(debug bool, file string, dockerfile []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	writeCheckSummary(p.w, p.checks, debug, file, dockerfile)
}

func writeCheckSummary(w io.Writer, ws []client.CheckWarning, debug bool, file string, dockerfile []byte) {
	if len(ws) == 0 {
		return
	}
	head := fmt.Sprintf("%d warnings found", len(ws))
	if len(ws) == 1 {
		head = "1 warning found"
	}
	if !debug {
		head += " (use builder --debug to expand)"
	}
	fmt.Fprintf(w, "\n %s:\n", head)
	for _, c := range ws {
		fmt.Fprintf(w, " - %s\n", c.Short())
		if !debug {
			continue
		}
		fmt.Fprintln(w, c.Description)
		if c.URL != "" {
			fmt.Fprintf(w, "More info: %s\n", c.URL)
		}
		writeExcerptLines(w, file, c.Line, c.EndLine, dockerfile)
		fmt.Fprintln(w)
	}
}
