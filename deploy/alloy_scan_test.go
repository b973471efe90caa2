package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The tokens of Alloy's syntax, for the checker in alloy_syntax_test.go.

type tokKind int

const (
	tokEOF tokKind = iota
	tokTerm
	tokIdent
	tokString
	tokNumber
	tokPunct
)

type alloyToken struct {
	kind tokKind
	text string // punctuation, identifier, number, or a string's value
	line int
	off  int    // where the token starts, in runes from the start of the file
	src  string // the token as written: a string with its quotes
}

// alloyComment is a comment as written, with where it starts.
type alloyComment struct {
	text      string // "// ..." without the newline, or "/* ... */"
	line, off int
}

// scanAlloy splits src into tokens, inserting a terminator at each newline
// that follows an identifier, a literal or a closing bracket, and returns
// the comments beside them (the formatter in alloy_fmt_test.go keeps them).
func scanAlloy(src string) ([]alloyToken, []alloyComment, []error) {
	var (
		toks     []alloyToken
		comments []alloyComment
		errs     []error
		line     = 1
		rs       = []rune(src)
	)
	add := func(kind tokKind, text string, start, end int) {
		toks = append(toks, alloyToken{kind, text, line, start, string(rs[start:end])})
	}
	ends := func() bool {
		if len(toks) == 0 {
			return false
		}
		last := toks[len(toks)-1]
		switch last.kind {
		case tokIdent, tokString, tokNumber:
			return true
		case tokPunct:
			return last.text == ")" || last.text == "]" || last.text == "}"
		}
		return false
	}
	newline := func(at int) {
		if ends() {
			toks = append(toks, alloyToken{tokTerm, "\n", line, at, "\n"})
		}
		line++
	}
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '\n':
			newline(i)
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '/' && i+1 < len(rs) && rs[i+1] == '/':
			j := i
			for j < len(rs) && rs[j] != '\n' {
				j++
			}
			comments = append(comments, alloyComment{string(rs[i:j]), line, i})
			i = j
		case c == '/' && i+1 < len(rs) && rs[i+1] == '*':
			start, j := line, i+2
			for j+1 < len(rs) && !(rs[j] == '*' && rs[j+1] == '/') {
				if rs[j] == '\n' {
					newline(j)
				}
				j++
			}
			if j+1 >= len(rs) {
				return toks, comments, append(errs, fmt.Errorf("line %d: comment /* is never closed", start))
			}
			comments = append(comments, alloyComment{string(rs[i : j+2]), start, i})
			i = j + 2
		case c == '"':
			j, closed := i+1, false
			for j < len(rs) && rs[j] != '\n' {
				if rs[j] == '\\' {
					j += 2
					continue
				}
				if rs[j] == '"' {
					closed = true
					break
				}
				j++
			}
			if !closed {
				return toks, comments, append(errs, fmt.Errorf("line %d: string is not closed on its line", line))
			}
			v, err := strconv.Unquote(string(rs[i : j+1]))
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: bad string %s: %v", line, string(rs[i:j+1]), err))
			}
			add(tokString, v, i, j+1)
			i = j + 1
		case c == '`':
			j := i + 1
			for j < len(rs) && rs[j] != '`' {
				j++
			}
			if j >= len(rs) {
				return toks, comments, append(errs, fmt.Errorf("line %d: raw string is never closed", line))
			}
			add(tokString, string(rs[i+1:j]), i, j+1)
			line += strings.Count(string(rs[i:j]), "\n")
			i = j + 1
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_') {
				j++
			}
			add(tokIdent, string(rs[i:j]), i, j)
			i = j
		case unicode.IsDigit(c):
			j := i
			for j < len(rs) && (unicode.IsDigit(rs[j]) || rs[j] == '.' || rs[j] == 'e' || rs[j] == 'E') {
				j++
			}
			add(tokNumber, string(rs[i:j]), i, j)
			i = j
		default:
			two := ""
			if i+1 < len(rs) {
				two = string(rs[i : i+2])
			}
			switch two {
			case "==", "!=", "<=", ">=", "&&", "||":
				add(tokPunct, two, i, i+2)
				i += 2
				continue
			}
			if !strings.ContainsRune("{}[](),.=+-*/%^<>!", c) {
				return toks, comments, append(errs, fmt.Errorf("line %d: unexpected character %q", line, c))
			}
			add(tokPunct, string(c), i, i+1)
			i++
		}
	}
	if ends() {
		toks = append(toks, alloyToken{tokTerm, "\n", line, len(rs), ""})
	}
	return append(toks, alloyToken{tokEOF, "", line, len(rs), ""}), comments, errs
}
