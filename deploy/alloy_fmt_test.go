package deploy

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"text/tabwriter"
)

// alloyFormat returns src as `alloy fmt` prints it, so that the checker can
// hold the .alloy files to Alloy's format without Alloy. It is a port of
// Alloy's printer (syntax/printer: walker.go, printer.go, trimmer.go) onto
// the tokens of alloy_scan_test.go, and keeps its rules:
//
//   - one tab per level of indentation: a block body, an object's fields, an
//     array's elements or a call's arguments that start on a line of their
//     own; a line that opens several brackets indents once;
//   - the "=" of attributes and object fields on consecutive lines lines up
//     (text/tabwriter, as Alloy uses it), a run ending at a blank line, a
//     comment line, a block, or after a statement that spans lines;
//   - one space around "=" and binary operators, after "," and before "{";
//     "{ }" for an empty block; a trailing comma after the last element of a
//     multi-line list or object;
//   - a blank line between a statement and a following block, blank lines of
//     the source kept (at most one), none at the start of a body or the end
//     of the file; comments stay where they are, indented with their line;
//   - block labels are written as Go quotes them; the file ends in a newline.
//
// Block comments (/* */) are not ported: a file holding one is an error.
func alloyFormat(src string) (string, error) {
	toks, comments, errs := scanAlloy(src)
	if len(errs) > 0 {
		return "", errs[0]
	}
	for _, c := range comments {
		if strings.HasPrefix(c.text, "/*") {
			return "", fmt.Errorf("line %d: block comments are not simulated; extend alloyFormat", c.line)
		}
	}
	w := &alloyWalker{p: &alloyPrinter{comments: comments, pos: fmtPos{line: 1}, lineStart: true}}
	for _, t := range toks {
		if t.kind != tokTerm {
			w.toks = append(w.toks, t)
		}
	}
	w.stmts(true)
	if w.err != nil {
		return "", w.err
	}
	w.p.flush(fmtPos{math.MaxInt, math.MaxInt}, true)

	var aligned bytes.Buffer
	tw := tabwriter.NewWriter(&aligned, 0, 8, 1, ' ', tabwriter.DiscardEmptyColumns|tabwriter.TabIndent)
	if _, err := tw.Write(w.p.out); err != nil {
		return "", err
	}
	if err := tw.Flush(); err != nil {
		return "", err
	}
	return string(alloyTrim(aligned.Bytes())) + "\n", nil
}

// alloyFmtDiff is `alloy fmt --test`: nil when src is formatted, else an
// error naming the first line that differs, tabs shown as \t.
func alloyFmtDiff(src string) error {
	want, err := alloyFormat(src)
	if err != nil {
		return err
	}
	if want == src {
		return nil
	}
	have, fmtd := strings.Split(src, "\n"), strings.Split(want, "\n")
	for i := range max(len(have), len(fmtd)) {
		h, w := "(end of file)", "(end of file)"
		if i < len(have) {
			h = have[i]
		}
		if i < len(fmtd) {
			w = fmtd[i]
		}
		if h != w {
			return fmt.Errorf("not formatted as alloy fmt writes it: line %d is %q, alloy fmt writes %q", i+1, h, w)
		}
	}
	return nil
}

func TestAlloyFormat(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{
			name: "two-space indentation becomes tabs",
			in:   "loki.write \"w\" {\n  endpoint {\n    url = \"http://loki:3100\"\n  }\n}\n",
			want: "loki.write \"w\" {\n\tendpoint {\n\t\turl = \"http://loki:3100\"\n\t}\n}\n",
		},
		{
			name: "= lines up in a run of attributes; a blank line starts a new run",
			in:   "discovery.docker \"d\" {\nhost = \"h\"\nrefresh_interval = \"15s\"\n\nport = 80\n}\n",
			want: "discovery.docker \"d\" {\n\thost             = \"h\"\n\trefresh_interval = \"15s\"\n\n\tport = 80\n}\n",
		},
		{
			name: "a comment line ends the run",
			in:   "b {\n\ta           = 1\n\t// why\n\tlonger_name = 2\n}\n",
			want: "b {\n\ta = 1\n\t// why\n\tlonger_name = 2\n}\n",
		},
		{
			name: "object fields line up; a multi-line value's first line is in the run, the field after it starts one",
			in:   "s {\n\tvalues = {\n\t\tservice = \"\",\n\t\tdeployment_env = \"\",\n\t\tnested = {\n\t\t\tk = 1,\n\t\t},\n\t\tx = 2,\n\t}\n}\n",
			want: "s {\n\tvalues = {\n\t\tservice        = \"\",\n\t\tdeployment_env = \"\",\n\t\tnested         = {\n\t\t\tk = 1,\n\t\t},\n\t\tx = 2,\n\t}\n}\n",
		},
		{
			name: "a blank line between an attribute and a block, none at the start or end of a body",
			in:   "loki.process \"p\" {\n\n\tforward_to = []\n\tstage.json {\n\t\texpressions = {}\n\t}\n\n}\n",
			want: "loki.process \"p\" {\n\tforward_to = []\n\n\tstage.json {\n\t\texpressions = {}\n\t}\n}\n",
		},
		{
			name: "an empty block is written { }, a label as Go quotes it",
			in:   "stage.decolorize {}\n\nloki.write `w` {\n}\n",
			want: "stage.decolorize { }\n\nloki.write \"w\" { }\n",
		},
		{
			name: "spaces around operators and after commas, none inside brackets",
			in:   "w {\n\turl = coalesce( sys.env(\"X\"),\"y\" )+\"/push\"\n\tlist = [ 1,2 ]\n}\n",
			want: "w {\n\turl  = coalesce(sys.env(\"X\"), \"y\") + \"/push\"\n\tlist = [1, 2]\n}\n",
		},
		{
			name: "[{ opening on one line indents once",
			in:   "local.file_match \"f\" {\n  path_targets = [{\n      __path__ = \"/x\",\n  }]\n}\n",
			want: "local.file_match \"f\" {\n\tpath_targets = [{\n\t\t__path__ = \"/x\",\n\t}]\n}\n",
		},
		{
			name: "trailing comments line up",
			in:   "b {\n\ta = 1 // one\n\tlonger = 22 // two\n}\n",
			want: "b {\n\ta      = 1  // one\n\tlonger = 22 // two\n}\n",
		},
		{
			name: "comments keep their line and take its indentation; one blank line at most",
			in:   "// top\n\n\n\nb {\n// inside\n  a = 1\n}\n\n\n",
			want: "// top\n\nb {\n\t// inside\n\ta = 1\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alloyFormat(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("alloyFormat:\n%s\nwant:\n%s", got, tt.want)
			}
			if err := alloyFmtDiff(tt.want); err != nil {
				t.Errorf("formatted text rejected: %v", err)
			}
			if err := alloyFmtDiff(tt.in); tt.in != tt.want && err == nil {
				t.Error("unformatted text accepted")
			}
		})
	}
	err := alloyFmtDiff("loki.write \"w\" {\n  endpoint {\n    url = \"u\"\n  }\n}\n")
	if want := `line 2 is "  endpoint {", alloy fmt writes "\tendpoint {"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %s", err, want)
	}
}
