package deploy

import (
	"fmt"
	"strconv"
	"strings"
)

// The walker half of alloyFormat (alloy_fmt_test.go): Alloy's
// syntax/printer/walker.go, which decides the line breaks and indentation
// from where each node of the syntax tree starts and ends.

// alloyWalker walks the tokens of a file as Alloy's walker walks its syntax
// tree, telling the printer what to write and which whitespace may go
// between. Each statement or expression method returns the lines its node
// starts and ends on, which decide the line breaks.
type alloyWalker struct {
	p    *alloyPrinter
	toks []alloyToken // without terminators
	i    int
	err  error
}

type lineSpan struct{ start, end int }

func (w *alloyWalker) peek() alloyToken {
	if w.i < len(w.toks) {
		return w.toks[w.i]
	}
	return alloyToken{kind: tokEOF}
}

func (w *alloyWalker) is(punct string) bool {
	t := w.peek()
	return t.kind == tokPunct && t.text == punct
}

// take returns the next token, which must be the punctuation want when
// want is not empty.
func (w *alloyWalker) take(want string) alloyToken {
	t := w.peek()
	if w.err == nil && (t.kind == tokEOF || want != "" && !w.is(want)) {
		w.err = fmt.Errorf("line %d: alloyFormat expected %q, found %q", t.line, want, t.src)
	}
	if t.kind != tokEOF {
		w.i++
	}
	return t
}

// endLine is the line a token ends on: a raw string may span lines.
func endLine(t alloyToken) int { return t.line + strings.Count(t.src, "\n") }

// stmts walks the statements of the file (top) or of a block body.
func (w *alloyWalker) stmts(top bool) {
	p := w.p
	for prevEnd, first := 0, true; w.err == nil; first = false {
		t := w.peek()
		if t.kind == tokEOF || !top && w.is("}") {
			return
		}
		block := w.blockAhead()
		switch {
		case !first && block: // two blocks, or an attribute and a block: a blank line between
			p.space(wsFormfeed)
		case !first && t.line-prevEnd > 1: // a blank line of the source
			p.space(wsFormfeed)
		}
		var s lineSpan
		if block {
			s = w.block()
		} else {
			s = w.attribute()
		}
		if s.end > s.start {
			p.space(wsFormfeed) // a statement over several lines ends the alignment run
		} else {
			p.space(wsNewline)
		}
		prevEnd = s.end
	}
}

// blockAhead tells a block (name.name "label" {) from an attribute (name =).
func (w *alloyWalker) blockAhead() bool {
	j := w.i + 1
	for j+1 < len(w.toks) && w.toks[j].text == "." && w.toks[j].kind == tokPunct {
		j += 2
	}
	return j < len(w.toks) && !(w.toks[j].kind == tokPunct && w.toks[j].text == "=")
}

func (w *alloyWalker) attribute() lineSpan {
	p := w.p
	name := w.take("")
	p.at(name)
	p.text(name.text)
	p.space(wsVTab)
	w.take("=")
	p.text("=")
	p.space(wsBlank)
	v := w.expr()
	return lineSpan{name.line, v.end}
}

func (w *alloyWalker) block() lineSpan {
	p := w.p
	first := w.take("")
	name := first.text
	for w.is(".") && w.err == nil {
		w.take(".")
		name += "." + w.take("").text
	}
	p.at(first)
	p.text(name)
	if w.peek().kind == tokString {
		label := w.take("")
		p.space(wsBlank)
		p.at(label)
		p.text(strconv.Quote(label.text))
	}
	lc := w.take("{")
	p.space(wsBlank)
	p.at(lc)
	p.text("{")
	p.space(wsIndent)
	if w.is("}") {
		p.space(wsBlank)
	} else {
		p.space(wsFormfeed)
		w.stmts(false)
	}
	rc := w.take("}")
	p.space(wsUnindent)
	p.at(rc)
	p.text("}")
	return lineSpan{first.line, rc.line}
}

// expr walks operands joined by binary operators; the printer needs no
// precedence, only the order of the tokens.
func (w *alloyWalker) expr() lineSpan {
	s := w.unary()
	for w.err == nil && w.peek().kind == tokPunct && alloyBinary[w.peek().text] {
		op := w.take("")
		w.p.space(wsBlank)
		w.p.at(op)
		w.p.text(op.text)
		w.p.space(wsBlank)
		s.end = w.unary().end
	}
	return s
}

func (w *alloyWalker) unary() lineSpan {
	if w.is("-") || w.is("!") {
		op := w.take("")
		w.p.at(op)
		w.p.text(op.text)
		return lineSpan{op.line, w.unary().end}
	}
	s := w.operand()
	for w.err == nil { // field access, index, call
		switch {
		case w.is("."):
			w.take(".")
			name := w.take("")
			w.p.text(".")
			w.p.text(name.text)
			s.end = name.line
		case w.is("["):
			lb := w.take("[")
			w.p.at(lb)
			w.p.text("[")
			w.expr()
			rb := w.take("]")
			w.p.at(rb)
			w.p.text("]")
			s.end = rb.line
		case w.is("("):
			s.end = w.call()
		default:
			return s
		}
	}
	return s
}

func (w *alloyWalker) operand() lineSpan {
	t := w.peek()
	switch {
	case t.kind == tokString || t.kind == tokNumber || t.kind == tokIdent:
		w.take("")
		w.p.at(t)
		w.p.text(t.src)
		return lineSpan{t.line, endLine(t)}
	case w.is("["):
		return w.array()
	case w.is("{"):
		return w.object()
	case w.is("("):
		lp := w.take("(")
		w.p.text("(")
		w.expr()
		rp := w.take(")")
		w.p.text(")")
		return lineSpan{lp.line, rp.line}
	}
	w.take("a value")
	return lineSpan{t.line, t.line}
}

// elements walks a comma-separated list up to close, calling each for an
// element; each writes the comma when another element follows.
func (w *alloyWalker) elements(close string, each func()) {
	for w.err == nil && !w.is(close) {
		before := w.i
		each()
		if w.is(",") {
			w.take(",")
		}
		if w.i == before {
			w.take(close)
		}
	}
}

func (w *alloyWalker) array() lineSpan {
	p := w.p
	lb := w.take("[")
	p.at(lb)
	p.text("[")
	prev, n := lb.line, 0
	w.elements("]", func() {
		newline := w.peek().line != prev
		if newline {
			p.space(wsIndent, wsFormfeed)
		} else if n > 0 {
			p.space(wsBlank)
		}
		prev = w.expr().end
		if w.is(",") && !w.nextIs(1, "]") {
			p.text(",")
		}
		if newline {
			p.space(wsUnindent)
		}
		n++
	})
	rb := w.take("]")
	if n > 0 && prev != rb.line {
		p.text(",")
		p.space(wsIndent, wsFormfeed, wsUnindent)
	}
	p.at(rb)
	p.text("]")
	return lineSpan{lb.line, rb.line}
}

func (w *alloyWalker) object() lineSpan {
	p := w.p
	lc := w.take("{")
	p.at(lc)
	p.text("{")
	p.space(wsIndent)
	prev, prevValueLines, n := lc.line, 0, 0
	w.elements("}", func() {
		key := w.take("")
		switch {
		case key.line != prev && n > 0 && prevValueLines == 1:
			p.space(wsNewline) // keeps the "=" run going
		case key.line != prev:
			p.space(wsFormfeed)
		case n > 0:
			p.space(wsBlank)
		}
		prev = key.line
		p.at(key)
		if key.kind == tokString {
			p.text(strconv.Quote(key.text))
		} else {
			p.text(key.text)
		}
		w.take("=")
		p.space(wsVTab)
		p.text("=")
		p.space(wsBlank)
		v := w.expr()
		prevValueLines = v.end - v.start + 1
		if w.is(",") && !w.nextIs(1, "}") {
			p.text(",")
		}
		n++
	})
	rc := w.take("}")
	if n > 0 && prev != rc.line {
		p.text(",")
		p.space(wsFormfeed)
	}
	p.space(wsUnindent)
	p.at(rc)
	p.text("}")
	return lineSpan{lc.line, rc.line}
}

func (w *alloyWalker) call() int {
	p := w.p
	lp := w.take("(")
	p.text("(")
	prev := lp.line
	w.elements(")", func() {
		newline := w.peek().line != prev
		if newline {
			p.space(wsFormfeed, wsIndent)
		}
		prev = w.expr().end
		if w.is(",") && !w.nextIs(1, ")") {
			p.text(",")
			p.space(wsBlank)
		}
		if newline {
			p.space(wsUnindent)
		}
	})
	rp := w.take(")")
	if prev != rp.line {
		p.text(",")
		p.space(wsFormfeed)
	}
	p.text(")")
	return rp.line
}

// nextIs reports whether the token k places ahead is the punctuation s.
func (w *alloyWalker) nextIs(k int, s string) bool {
	j := w.i + k
	return j < len(w.toks) && w.toks[j].kind == tokPunct && w.toks[j].text == s
}
