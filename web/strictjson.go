package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/danielgtaylor/huma/v2"
)

// strictJSON is the API's JSON format: as huma's, except that a request body naming a key
// twice in one object is refused (400), not read as its last value, so that what a proxy or
// log sees of a request is what taskrace does; and its errors name no Go types.
var strictJSON = huma.Format{
	Marshal: huma.DefaultJSONFormat.Marshal,
	Unmarshal: func(data []byte, v any) error {
		if err := noDuplicateKeys(data); err != nil {
			return err
		}
		err := json.Unmarshal(data, v)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s must be %s; got a JSON %s", te.Field, kindWord(te.Type.Kind()), te.Value)
		}
		return err
	},
}

func kindWord(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// foldKey is a key as encoding/json matches it to a field: without regard to case, Unicode's
// included ("taſks" is "tasks", "MODE" is "mode").
func foldKey(k string) string {
	return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, k)
}

// noDuplicateKeys walks data's tokens and reports the first key repeated within an object.
// Malformed JSON is left for json.Unmarshal to report.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type object struct {
		keys  map[string]bool
		inKey bool // the next string token is a key
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or malformed JSON, which json.Unmarshal reports
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil {
					top.inKey = true // the object was a value: a key comes next
				}
				stack = append(stack, &object{keys: map[string]bool{}, inKey: true})
			case '[':
				stack = append(stack, nil)
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1] != nil {
					stack[len(stack)-1].inKey = true
				}
			}
		default:
			if top == nil {
				continue
			}
			if top.inKey {
				key, _ := t.(string)
				if top.keys[foldKey(key)] {
					return fmt.Errorf("the key %q appears twice in one object (keys are read without regard to case)", key)
				}
				top.keys[foldKey(key)] = true
				top.inKey = false
			} else {
				top.inKey = true
			}
		}
	}
}
