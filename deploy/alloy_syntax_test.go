package deploy

import (
	"fmt"
	"strconv"
	"strings"
)

// A small reader for Grafana Alloy's configuration syntax, enough to check
// the .alloy files of this directory without Alloy: no Alloy binary or
// parser module can be had here. It follows the language's rules where the
// design's file broke them:
//
//   - statements (attributes and blocks) end at a newline, as in Go a
//     newline after an identifier, a literal or a closing bracket ends the
//     statement, so two attributes on one line are an error, and so is a
//     multi-line list or object without its trailing comma;
//   - strings ("..." with escapes, `raw`) must close, brackets must balance;
//   - a component is a block with a dotted name and a label,
//     loki.process "botfleet", and a reference such as
//     loki.process.botfleet.receiver must name a component defined in the
//     same file, with one of the exports botfleet's files use.
//
// It does not know which blocks and attributes each component accepts.
// alloyFmtDiff (alloy_fmt_test.go) checks the format alloy fmt writes.

// alloyExports are the exported fields that references may read.
var alloyExports = map[string]bool{"receiver": true, "targets": true, "output": true, "rules": true}

// alloyBlock is a block with its attributes and nested blocks, in order.
type alloyBlock struct {
	Name   string // "loki.process", "stage.json", "rule"
	Label  string // "botfleet"; empty for nested blocks
	Line   int
	Attrs  map[string]alloyValue
	Blocks []*alloyBlock
}

// ID is how references name a component: loki.process.botfleet.
func (b *alloyBlock) ID() string { return b.Name + "." + b.Label }

// Block returns the nested blocks of a name, in order.
func (b *alloyBlock) Block(name string) []*alloyBlock {
	var out []*alloyBlock
	for _, c := range b.Blocks {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// alloyValue is an evaluated literal or, for anything else (references,
// calls, operators), the references it reads.
type alloyValue struct {
	Str    *string
	List   []alloyValue
	IsList bool
	Object map[string]alloyValue
	Refs   []string
	Src    string // the expression's tokens, space-separated
}

// Strings returns a list of string literals; ok is false for anything else.
func (v alloyValue) Strings() ([]string, bool) {
	if !v.IsList {
		return nil, false
	}
	out := make([]string, 0, len(v.List))
	for _, e := range v.List {
		if e.Str == nil {
			return nil, false
		}
		out = append(out, *e.Str)
	}
	return out, true
}

// alloyFile is a parsed file.
type alloyFile struct {
	Blocks []*alloyBlock
	Refs   []alloyRef
}

type alloyRef struct {
	Path string
	Line int
}

// ComponentsNamed returns the top-level blocks of a component name.
func (f *alloyFile) ComponentsNamed(name string) []*alloyBlock {
	var out []*alloyBlock
	for _, b := range f.Blocks {
		if b.Name == name {
			out = append(out, b)
		}
	}
	return out
}

// parseAlloy reads a file and checks it; the errors carry line numbers. The
// returned file holds what could be parsed.
func parseAlloy(src string) (*alloyFile, []error) {
	toks, _, errs := scanAlloy(src)
	if len(errs) > 0 {
		return &alloyFile{}, errs
	}
	p := &alloyParser{toks: toks, file: &alloyFile{}}
	_, p.file.Blocks = p.body(true)
	if len(p.errs) > 0 {
		return p.file, p.errs
	}
	return p.file, p.checkRefs()
}

type alloyParser struct {
	toks []alloyToken
	pos  int
	file *alloyFile
	errs []error
}

func (p *alloyParser) tok() alloyToken { return p.toks[p.pos] }

func (p *alloyParser) next() alloyToken {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *alloyParser) is(text string) bool {
	t := p.tok()
	return t.kind == tokPunct && t.text == text
}

// fail records an error and gives up on the file: one clear error beats a
// cascade.
func (p *alloyParser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: "+format, append([]any{p.tok().line}, args...)...))
	p.pos = len(p.toks) - 1
}

func describe(t alloyToken) string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokTerm:
		return "newline"
	case tokString:
		return strconv.Quote(t.text)
	}
	return t.text
}

// body reads statements up to the end of the file (top) or the "}" that
// closes the enclosing block, and returns the attributes and blocks read.
func (p *alloyParser) body(top bool) (map[string]alloyValue, []*alloyBlock) {
	attrs := map[string]alloyValue{}
	var blocks []*alloyBlock
	for len(p.errs) == 0 {
		for p.tok().kind == tokTerm {
			p.next()
		}
		t := p.tok()
		if top && t.kind == tokEOF || !top && p.is("}") {
			break
		}
		if t.kind == tokEOF {
			p.fail("block is not closed: missing }")
			break
		}
		if t.kind != tokIdent {
			p.fail("expected an attribute or a block, found %s", describe(t))
			break
		}
		name := p.next().text
		if p.is("=") {
			p.next()
			if top {
				p.fail("attribute %s outside any block", name)
				break
			}
			if _, dup := attrs[name]; dup {
				p.fail("attribute %s is set twice", name)
				break
			}
			attrs[name] = p.expr()
		} else if b := p.block(t, name, top); b != nil {
			blocks = append(blocks, b)
		}
		if t := p.tok(); len(p.errs) == 0 && t.kind != tokTerm && t.kind != tokEOF && !(!top && p.is("}")) {
			p.fail("expected a newline after %s, found %s (two statements on one line?)", name, describe(t))
		}
	}
	return attrs, blocks
}

// block reads the rest of a block whose first name was read: more names,
// a label, and its body in braces.
func (p *alloyParser) block(first alloyToken, name string, top bool) *alloyBlock {
	for p.is(".") {
		p.next()
		if p.tok().kind != tokIdent {
			p.fail("expected a name after '.' in a block name, found %s", describe(p.tok()))
			return nil
		}
		name += "." + p.next().text
	}
	b := &alloyBlock{Name: name, Line: first.line}
	if p.tok().kind == tokString {
		b.Label = p.next().text
	}
	if top && strings.Contains(name, ".") && b.Label == "" {
		p.fail("component %s has no label", name)
		return nil
	}
	if !p.is("{") {
		p.fail("expected = or { after %s, found %s", name, describe(p.tok()))
		return nil
	}
	p.next()
	b.Attrs, b.Blocks = p.body(false)
	p.expect("}")
	return b
}

var alloyBinary = map[string]bool{
	"||": true, "&&": true, "==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true,
	"+": true, "-": true, "*": true, "/": true, "%": true, "^": true,
}

// expr reads an expression: operands joined by binary operators.
func (p *alloyParser) expr() alloyValue {
	start := p.pos
	v := p.unary()
	for len(p.errs) == 0 && p.tok().kind == tokPunct && alloyBinary[p.tok().text] {
		p.next()
		w := p.unary()
		v = alloyValue{Refs: append(v.Refs, w.Refs...)}
	}
	var src []string
	for _, t := range p.toks[start:p.pos] {
		if t.kind == tokString {
			src = append(src, strconv.Quote(t.text))
		} else {
			src = append(src, t.text)
		}
	}
	v.Src = strings.Join(src, " ")
	return v
}

func (p *alloyParser) unary() alloyValue {
	if p.is("-") || p.is("!") {
		p.next()
		return alloyValue{Refs: p.unary().Refs}
	}
	return p.operand()
}

func (p *alloyParser) operand() alloyValue {
	t := p.tok()
	switch {
	case t.kind == tokString:
		p.next()
		s := t.text
		return alloyValue{Str: &s}
	case t.kind == tokNumber:
		p.next()
		return alloyValue{}
	case t.kind == tokIdent:
		return p.access()
	case p.is("("):
		p.next()
		v := p.expr()
		p.expect(")")
		return v
	case p.is("["):
		return p.list()
	case p.is("{"):
		return p.object()
	}
	p.fail("expected a value, found %s", describe(t))
	return alloyValue{}
}

// access reads name.name..., calls and indexes; a dotted name that is not
// called is a reference.
func (p *alloyParser) access() alloyValue {
	first := p.next()
	path := first.text
	for p.is(".") {
		p.next()
		if p.tok().kind != tokIdent {
			p.fail("expected a name after '.', found %s", describe(p.tok()))
			return alloyValue{}
		}
		path += "." + p.next().text
	}
	var v alloyValue
	switch {
	case p.is("("):
		p.next()
		for len(p.errs) == 0 && !p.is(")") {
			v.Refs = append(v.Refs, p.expr().Refs...)
			if !p.is(",") {
				break
			}
			p.next()
		}
		p.expect(")")
	case path == "true" || path == "false" || path == "null":
	default:
		if strings.Contains(path, ".") {
			p.file.Refs = append(p.file.Refs, alloyRef{path, first.line})
		}
		v.Refs = []string{path}
	}
	for p.is("[") {
		p.next()
		v.Refs = append(v.Refs, p.expr().Refs...)
		p.expect("]")
	}
	return v
}

func (p *alloyParser) list() alloyValue {
	p.next() // [
	v := alloyValue{IsList: true}
	for len(p.errs) == 0 && !p.is("]") {
		e := p.expr()
		v.List = append(v.List, e)
		v.Refs = append(v.Refs, e.Refs...)
		if p.tok().kind == tokTerm {
			p.fail("missing ',' before newline in list")
			break
		}
		if !p.is(",") {
			break
		}
		p.next()
	}
	p.expect("]")
	return v
}

func (p *alloyParser) object() alloyValue {
	p.next() // {
	v := alloyValue{Object: map[string]alloyValue{}}
	for len(p.errs) == 0 && !p.is("}") {
		k := p.tok()
		if k.kind != tokIdent && k.kind != tokString {
			p.fail("expected an object key, found %s", describe(k))
			break
		}
		p.next()
		if _, dup := v.Object[k.text]; dup {
			p.fail("object key %s is set twice", k.text)
			break
		}
		p.expect("=")
		e := p.expr()
		v.Object[k.text] = e
		v.Refs = append(v.Refs, e.Refs...)
		if p.tok().kind == tokTerm {
			p.fail("missing ',' before newline in object")
			break
		}
		if !p.is(",") {
			break
		}
		p.next()
	}
	p.expect("}")
	return v
}

func (p *alloyParser) expect(text string) {
	if len(p.errs) > 0 {
		return
	}
	if !p.is(text) {
		p.fail("expected %s, found %s", text, describe(p.tok()))
		return
	}
	p.next()
}

// checkRefs checks that each reference names a component of the file and
// one of its exports, and that no component is defined twice.
func (p *alloyParser) checkRefs() []error {
	var errs []error
	seen := map[string]int{}
	for _, b := range p.file.Blocks {
		if b.Label == "" {
			continue
		}
		if line, dup := seen[b.ID()]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s %q is already defined on line %d", b.Line, b.Name, b.Label, line))
		}
		seen[b.ID()] = b.Line
	}
	for _, r := range p.file.Refs {
		i := strings.LastIndex(r.Path, ".")
		id, export := r.Path[:i], r.Path[i+1:]
		if _, ok := seen[id]; !ok {
			errs = append(errs, fmt.Errorf("line %d: %s refers to %s, which this file does not define", r.Line, r.Path, id))
			continue
		}
		if !alloyExports[export] {
			errs = append(errs, fmt.Errorf("line %d: %s reads export %q; known: receiver, targets, output, rules", r.Line, r.Path, export))
		}
	}
	return errs
}
