package deploy

import (
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// The printer half of alloyFormat (alloy_fmt_test.go): Alloy's
// syntax/printer/printer.go, which queues whitespace between tokens, writes
// comments where they fall in the source, and leaves alignment to
// text/tabwriter: '\v' ends the cell an "=" lines up after, '\f' ends a
// run of aligned lines, comments are escaped from the tabwriter.

// Whitespace the walker queues, as Alloy's printer names it.
const (
	wsIgnore   byte = 0
	wsBlank    byte = ' '
	wsVTab     byte = '\v'
	wsNewline  byte = '\n'
	wsFormfeed byte = '\f'
	wsIndent   byte = '>'
	wsUnindent byte = '<'
)

// fmtPos is a position in the source: the printer's idea of where it is,
// set from each token that carries its position and advanced by what it
// writes, as Alloy's is.
type fmtPos struct{ off, line int }

type alloyPrinter struct {
	out       []byte
	indent    int
	ws        []byte // queued whitespace, written before the next token
	comments  []alloyComment
	next      int    // the next comment to write
	pos, last fmtPos // where the printer is; where the last text ended
	lineStart bool   // nothing written on the current output line yet
}

// space queues whitespace for before the next token.
func (p *alloyPrinter) space(ws ...byte) { p.ws = append(p.ws, ws...) }

// at sets the position to a token's own, as Alloy's walker does before the
// tokens its syntax tree knows the position of.
func (p *alloyPrinter) at(t alloyToken) { p.pos = fmtPos{t.off, t.line} }

// text writes a token, after the comments that come before it in the
// source and the queued whitespace.
func (p *alloyPrinter) text(s string) {
	next := p.pos
	p.flush(next, false)
	p.writeString(next, s, false)
}

func (p *alloyPrinter) commentBefore(next fmtPos) bool {
	return p.next < len(p.comments) && p.comments[p.next].off <= next.off
}

// flush writes the comments before next and the queued whitespace; at the
// end of the file (eof) only the comments.
func (p *alloyPrinter) flush(next fmtPos, eof bool) {
	if !p.commentBefore(next) {
		if !eof {
			p.writeWhitespace(len(p.ws))
		}
		return
	}
	for p.commentBefore(next) {
		c := p.comments[p.next]
		p.next++
		p.commentPrefix(next, c)
		p.writeString(fmtPos{c.off, c.line}, c.text, true)
	}
	if !eof {
		p.commentSuffix(next)
	}
}

// commentPrefix writes what goes before a comment: a tab after a token on
// its line (trailing comments line up too), else the newlines of the
// source, at most one blank line, in place of the queued line break.
func (p *alloyPrinter) commentPrefix(next fmtPos, c alloyComment) {
	if len(p.out) == 0 {
		return
	}
	if c.line == p.last.line {
		sep := byte('\t')
		if c.line == next.line {
			sep = ' '
		}
		p.writeByte(sep, 1)
		return
	}
	n := 0
	for i, ws := range p.ws {
		if ws == wsIndent || ws == wsUnindent {
			continue
		}
		p.ws[i] = wsIgnore
		n = i
		break
	}
	p.writeWhitespace(n)
	if lines := c.line - p.last.line; lines > 0 && p.last.line > 0 {
		p.writeByte('\f', min(lines, 2))
	}
}

// commentSuffix writes the line breaks between the last comment and the
// next token, as many as the source has (at most two), dropping the queued
// ones but keeping the queued indentation.
func (p *alloyPrinter) commentSuffix(next fmtPos) {
	droppedFF := false
	for i, ws := range p.ws {
		switch ws {
		case wsBlank, wsVTab, wsNewline:
			p.ws[i] = wsIgnore
		case wsFormfeed:
			p.ws[i] = wsIgnore
			droppedFF = true
		}
	}
	p.writeWhitespace(len(p.ws))
	if lines := next.line - p.last.line; lines > 0 {
		ch := byte('\n')
		if droppedFF {
			ch = '\f'
		}
		p.writeByte(ch, min(lines, 2))
	}
}

// writeString writes s at pos; a literal (a comment) is escaped from the
// tabwriter.
func (p *alloyPrinter) writeString(pos fmtPos, s string, literal bool) {
	if p.lineStart {
		p.writeIndent()
	}
	p.pos = pos
	if literal {
		p.out = append(p.out, tabwriter.Escape)
	}
	p.out = append(p.out, s...)
	if literal {
		p.out = append(p.out, tabwriter.Escape)
	}
	p.pos.off += utf8.RuneCountInString(s)
	if n := strings.Count(s, "\n"); n > 0 {
		p.pos.line += n
		p.lineStart = strings.HasSuffix(s, "\n")
	} else if s != "" {
		p.lineStart = false
	}
	p.last = p.pos
}

func (p *alloyPrinter) writeIndent() {
	for range p.indent {
		p.out = append(p.out, '\t')
	}
	p.pos.off += p.indent
	if p.indent > 0 {
		p.lineStart = false
	}
}

// writeByte writes whitespace, indenting first at the start of a line.
func (p *alloyPrinter) writeByte(ch byte, n int) {
	if p.lineStart {
		p.writeIndent()
	}
	for range n {
		p.out = append(p.out, ch)
	}
	p.pos.off += n
	p.lineStart = ch == '\n' || ch == '\f'
	if p.lineStart {
		p.pos.line += n
	}
}

// writeWhitespace writes the first n queued whitespace entries.
func (p *alloyPrinter) writeWhitespace(n int) {
	for _, ws := range p.ws[:n] {
		switch ws {
		case wsIgnore:
		case wsIndent:
			p.indent++
		case wsUnindent:
			p.indent--
		default:
			p.writeByte(ws, 1)
		}
	}
	p.ws = p.ws[:copy(p.ws, p.ws[n:])]
}

// alloyTrim is Alloy's trimmer over the tabwriter's output: it drops the
// escape bytes around comments and the blanks and tabs that end a line,
// and turns '\f' into '\n' and '\v' into '\t'. Escaped text is kept as is.
func alloyTrim(data []byte) []byte {
	const (
		inSpace = iota
		inEscape
		inText
	)
	var out, space []byte
	state := inSpace
	for _, b := range data {
		if state == inEscape {
			if b == tabwriter.Escape {
				state, space = inSpace, space[:0]
			} else {
				out = append(out, b)
			}
			continue
		}
		if b == '\v' {
			b = '\t'
		}
		switch b {
		case '\t', ' ':
			if state == inText {
				state, space = inSpace, space[:0]
			}
			space = append(space, b)
		case '\n', '\f':
			state, space = inSpace, space[:0]
			out = append(out, '\n')
		case tabwriter.Escape:
			if state == inSpace {
				out = append(out, space...)
			}
			state = inEscape
		default:
			if state == inSpace {
				out = append(out, space...)
			}
			state = inText
			out = append(out, b)
		}
	}
	return out
}
