package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Validator checks a job type's payload before a job is accepted, so that
// a payload its handler cannot use is refused at the door (the bot answers
// 400) rather than failing on a worker later. A Handler that implements it
// is registered with its validator; WithValidate gives one to any handler.
//
// Validate must not block or do I/O: it runs on the request path. Its error
// should be a *PayloadError naming the field and what is allowed.
type Validator interface {
	Validate(payload json.RawMessage) error
}

// PayloadError reports a payload a job type refuses: which field, and what
// is wrong with it and what is allowed. Mux.Validate returns one (check
// with errors.As); the built-in handlers' errors wrap one and ErrSkipRetry.
type PayloadError struct {
	Field  string // the payload's field, "duration"; "" for the payload as a whole
	Reason string // what is wrong, and what is allowed
	err    error  // what a validator returned, when it was not a *PayloadError
}

// Error names the field and says what is wrong with it.
func (e *PayloadError) Error() string {
	if e.Field == "" {
		return "payload: " + e.Reason
	}
	return fmt.Sprintf("payload field %q: %s", e.Field, e.Reason)
}

// Unwrap returns the validator's own error, if it was wrapped.
func (e *PayloadError) Unwrap() error { return e.err }

// ErrUnknownType is wrapped by Mux.Validate's error for a type no handler
// is registered for.
var ErrUnknownType = errors.New("jobs: unknown job type")

func payloadErr(field, format string, args ...any) *PayloadError {
	return &PayloadError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// checkJSON refuses a payload that is not valid UTF-8 or not exactly one
// JSON value (with white space around it). Empty is allowed: it means null.
func checkJSON(payload json.RawMessage) error {
	if !utf8.Valid(payload) {
		for i := 0; i < len(payload); {
			r, size := utf8.DecodeRune(payload[i:])
			if r == utf8.RuneError && size == 1 {
				return payloadErr("", "invalid UTF-8 at byte %d; want JSON text in UTF-8", i)
			}
			i += size
		}
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return payloadErr("", "not JSON (%v); want one JSON value", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return payloadErr("", "data after the JSON value, at byte %d; want one JSON value", dec.InputOffset())
	}
	return nil
}

// isNull reports whether payload is empty or null: no fields given.
func isNull(payload json.RawMessage) bool {
	p := bytes.TrimSpace(payload)
	return len(p) == 0 || string(p) == "null"
}

// decodePayload reads payload into the struct v points to, strictly: one
// JSON object (or null, or nothing: no fields) in valid UTF-8, each key a
// field of v by its json name, spelt exactly, given once. It returns the
// fields given; its error is a *PayloadError naming the first field found
// wrong. v's fields must not be embedded structs.
func decodePayload(payload json.RawMessage, v any) (map[string]bool, error) {
	if err := checkJSON(payload); err != nil {
		return nil, err
	}
	if isNull(payload) {
		return nil, nil
	}
	fields, names := jsonFields(v)
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, payloadErr("", "want a JSON object with the fields %s", names)
	}
	given := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, payloadErr("", "not JSON (%v)", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, payloadErr(key, "not JSON (%v)", err)
		}
		f, ok := fields[key]
		switch {
		case !ok:
			return nil, payloadErr(key, "unknown field; want %s", names)
		case given[key]:
			return nil, payloadErr(key, "given twice")
		}
		given[key] = true
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return nil, payloadErr(key, "%s", decodeReason(err))
		}
	}
	return given, nil
}

// jsonFields returns the fields of the struct v points to by their JSON
// names, and the names as a sentence: "url, method or timeout".
func jsonFields(v any) (map[string]reflect.Value, string) {
	rv := reflect.ValueOf(v).Elem()
	fields := make(map[string]reflect.Value, rv.NumField())
	var names []string
	for i := range rv.NumField() {
		sf := rv.Type().Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || sf.Anonymous || name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fields[name] = rv.Field(i)
		names = append(names, name)
	}
	switch len(names) {
	case 0:
		return fields, "no fields"
	case 1:
		return fields, names[0]
	}
	return fields, strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// decodeReason says why a field's value did not decode, in the payload's
// terms rather than Go's.
func decodeReason(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	want := "a " + te.Type.String()
	switch te.Type.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.Slice, reflect.Array:
		want = "an array"
	case reflect.Map, reflect.Struct:
		want = "an object"
	}
	return fmt.Sprintf("a JSON %s; want %s", te.Value, want)
}

// refused makes a payload error a handler's: named by the job type, and
// not retried, since the same payload fails the same way every time.
func refused(job *Job, err error) error {
	return fmt.Errorf("%s: %w (%w)", job.Type, err, ErrSkipRetry)
}
