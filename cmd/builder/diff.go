package main

import (
	"encoding/json"
	"io"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// Exit codes of diff and build --check-reproducible, as diff(1): 0 the
// images are identical, 1 they differ, 2 trouble (an image cannot be read).
const exitDiffer = 1

func newDiffCmd(g *globalFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "diff [flags] A B",
		Short: "Compare two images: config field by field, layers path by path",
		Long: `Compare two images: the manifest and config field by field, then each
pair of layers path by path (added, removed, or changed and in what:
content, mode, uid/gid, mtime, xattrs, link target, ...).

A and B are each an image of the store (name:tag, digest or image ID), or a
path to an OCI tar, an OCI layout dir or a docker-archive tar (an existing
path wins; oci:PATH, oci-archive:PATH and docker-archive:PATH force a path).

Exit status: 0 identical, 1 different, 2 trouble.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usagef("--format must be text or json, not %q", format)
			}
			c, err := openClient(cmd, g)
			if err != nil {
				return exitError{2, err}
			}
			rep, err := c.Diff(cmd.Context(), args[0], args[1])
			if err != nil {
				return exitError{2, err}
			}
			if err := writeReport(cmd.OutOrStdout(), rep, format); err != nil {
				return exitError{2, err}
			}
			if !rep.Identical {
				return exitError{code: exitDiffer}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output: text or json")
	return cmd
}

func writeReport(w io.Writer, rep *client.DiffReport, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	return rep.WriteText(w)
}

// exitError ends the command with code, printing err when there is one.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }
