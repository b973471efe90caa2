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
}

// scanAlloy splits src into tokens, inserting a terminator at each newline
// that follows an identifier, a literal or a closing bracket.
func scanAlloy(src string) ([]alloyToken, []error) {
	var (
		toks []alloyToken
		errs []error
		line = 1
		rs   = []rune(src)
	)
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
	newline := func() {
		if ends() {
			toks = append(toks, alloyToken{tokTerm, "\n", line})
		}
		line++
	}
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '\n':
			newline()
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '/' && i+1 < len(rs) && rs[i+1] == '/':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(rs) && rs[i+1] == '*':
			start, j := line, i+2
			for j+1 < len(rs) && !(rs[j] == '*' && rs[j+1] == '/') {
				if rs[j] == '\n' {
					newline()
				}
				j++
			}
			if j+1 >= len(rs) {
				return toks, append(errs, fmt.Errorf("line %d: comment /* is never closed", start))
			}
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
				return toks, append(errs, fmt.Errorf("line %d: string is not closed on its line", line))
			}
			v, err := strconv.Unquote(string(rs[i : j+1]))
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: bad string %s: %v", line, string(rs[i:j+1]), err))
			}
			toks = append(toks, alloyToken{tokString, v, line})
			i = j + 1
		case c == '`':
			j := i + 1
			for j < len(rs) && rs[j] != '`' {
				j++
			}
			if j >= len(rs) {
				return toks, append(errs, fmt.Errorf("line %d: raw string is never closed", line))
			}
			toks = append(toks, alloyToken{tokString, string(rs[i+1 : j]), line})
			line += strings.Count(string(rs[i:j]), "\n")
			i = j + 1
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_') {
				j++
			}
			toks = append(toks, alloyToken{tokIdent, string(rs[i:j]), line})
			i = j
		case unicode.IsDigit(c):
			j := i
			for j < len(rs) && (unicode.IsDigit(rs[j]) || rs[j] == '.' || rs[j] == 'e' || rs[j] == 'E') {
				j++
			}
			toks = append(toks, alloyToken{tokNumber, string(rs[i:j]), line})
			i = j
		default:
			two := ""
			if i+1 < len(rs) {
				two = string(rs[i : i+2])
			}
			switch two {
			case "==", "!=", "<=", ">=", "&&", "||":
				toks = append(toks, alloyToken{tokPunct, two, line})
				i += 2
				continue
			}
			if !strings.ContainsRune("{}[](),.=+-*/%^<>!", c) {
				return toks, append(errs, fmt.Errorf("line %d: unexpected character %q", line, c))
			}
			toks = append(toks, alloyToken{tokPunct, string(c), line})
			i++
		}
	}
	if ends() {
		toks = append(toks, alloyToken{tokTerm, "\n", line})
	}
	return append(toks, alloyToken{tokEOF, "", line}), errs
}
