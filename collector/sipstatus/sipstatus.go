package sipstatus

// Status codes of the registry that the exporter refers to by name. The full
// set is in [Codes].
const (
	Trying                      = 100 // RFC 3261 §21.1.1
	Ringing                     = 180 // RFC 3261 §21.1.2
	SessionProgress             = 183 // RFC 3261 §21.1.5
	OK                          = 200 // RFC 3261 §21.2.1
	Unauthorized                = 401 // RFC 3261 §21.4.2
	ProxyAuthenticationRequired = 407 // RFC 3261 §21.4.8
	RequestTimeout              = 408 // RFC 3261 §21.4.9
	RequestTerminated           = 487 // RFC 3261 §21.4.26
	ServiceUnavailable          = 503 // RFC 3261 §21.5.4
)

// MinCode and MaxCode bound the status codes that RFC 3261 §7.2 allows in a
// status line: three digits whose first is 1 to 6. Codes outside this range
// are not SIP responses.
const (
	MinCode = 100
	MaxCode = 699
)

// UnassignedText is what [Text] returns for a code in range that the registry
// does not list.
const UnassignedText = "Unassigned"

// Entry is one registry row.
type Entry struct {
	Reason    string // canonical reason phrase, e.g. "Busy Here"
	Reference string // defining document, e.g. "RFC 3261"
	Status    string // "registered", "deprecated (...)" or "historic (...)"
}

// registry maps a status code to its entry; generated from the project's
// copy of the IANA registry (shared/sip-response-codes.tsv) and checked
// against it by the tests.
var registry = map[int]Entry{
	100: {"Trying", "RFC 3261", "registered"},
	180: {"Ringing", "RFC 3261", "registered"},
	181: {"Call Is Being Forwarded", "RFC 3261", "registered"},
	182: {"Queued", "RFC 3261", "registered"},
	183: {"Session Progress", "RFC 3261", "registered"},
	199: {"Early Dialog Terminated", "RFC 6228", "registered"},
	200: {"OK", "RFC 3261", "registered"},
	202: {"Accepted", "RFC 3265", "deprecated (RFC 6665)"},
	204: {"No Notification", "RFC 5839", "registered"},
	300: {"Multiple Choices", "RFC 3261", "registered"},
	301: {"Moved Permanently", "RFC 3261", "registered"},
	302: {"Moved Temporarily", "RFC 3261", "registered"},
	305: {"Use Proxy", "RFC 3261", "registered"},
	380: {"Alternative Service", "RFC 3261", "registered"},
	400: {"Bad Request", "RFC 3261", "registered"},
	401: {"Unauthorized", "RFC 3261", "registered"},
	402: {"Payment Required", "RFC 3261", "registered"},
	403: {"Forbidden", "RFC 3261", "registered"},
	404: {"Not Found", "RFC 3261", "registered"},
	405: {"Method Not Allowed", "RFC 3261", "registered"},
	406: {"Not Acceptable", "RFC 3261", "registered"},
	407: {"Proxy Authentication Required", "RFC 3261", "registered"},
	408: {"Request Timeout", "RFC 3261", "registered"},
	409: {"Conflict", "RFC 2543", "historic (removed by RFC 3261)"},
	410: {"Gone", "RFC 3261", "registered"},
	411: {"Length Required", "RFC 2543", "historic (removed by RFC 3261)"},
	412: {"Conditional Request Failed", "RFC 3903", "registered"},
	413: {"Request Entity Too Large", "RFC 3261", "registered"},
	414: {"Request-URI Too Long", "RFC 3261", "registered"},
	415: {"Unsupported Media Type", "RFC 3261", "registered"},
	416: {"Unsupported URI Scheme", "RFC 3261", "registered"},
	417: {"Unknown Resource-Priority", "RFC 4412", "registered"},
	420: {"Bad Extension", "RFC 3261", "registered"},
	421: {"Extension Required", "RFC 3261", "registered"},
	422: {"Session Interval Too Small", "RFC 4028", "registered"},
	423: {"Interval Too Brief", "RFC 3261", "registered"},
	424: {"Bad Location Information", "RFC 6442", "registered"},
	425: {"Bad Alert Message", "RFC 8876", "registered"},
	428: {"Use Identity Header", "RFC 8224", "registered"},
	429: {"Provide Referrer Identity", "RFC 3892", "registered"},
	430: {"Flow Failed", "RFC 5626", "registered"},
	433: {"Anonymity Disallowed", "RFC 5079", "registered"},
	436: {"Bad Identity Info", "RFC 8224", "registered"},
	437: {"Unsupported Credential", "RFC 8224", "registered"},
	438: {"Invalid Identity Header", "RFC 8224", "registered"},
	439: {"First Hop Lacks Outbound Support", "RFC 5626", "registered"},
	440: {"Max-Breadth Exceeded", "RFC 5393", "registered"},
	469: {"Bad Info Package", "RFC 6086", "registered"},
	470: {"Consent Needed", "RFC 5360", "registered"},
	480: {"Temporarily Unavailable", "RFC 3261", "registered"},
	481: {"Call/Transaction Does Not Exist", "RFC 3261", "registered"},
	482: {"Loop Detected", "RFC 3261", "registered"},
	483: {"Too Many Hops", "RFC 3261", "registered"},
	484: {"Address Incomplete", "RFC 3261", "registered"},
	485: {"Ambiguous", "RFC 3261", "registered"},
	486: {"Busy Here", "RFC 3261", "registered"},
	487: {"Request Terminated", "RFC 3261", "registered"},
	488: {"Not Acceptable Here", "RFC 3261", "registered"},
	489: {"Bad Event", "RFC 6665", "registered"},
	491: {"Request Pending", "RFC 3261", "registered"},
	493: {"Undecipherable", "RFC 3261", "registered"},
	494: {"Security Agreement Required", "RFC 3329", "registered"},
	500: {"Server Internal Error", "RFC 3261", "registered"},
	501: {"Not Implemented", "RFC 3261", "registered"},
	502: {"Bad Gateway", "RFC 3261", "registered"},
	503: {"Service Unavailable", "RFC 3261", "registered"},
	504: {"Server Time-out", "RFC 3261", "registered"},
	505: {"Version Not Supported", "RFC 3261", "registered"},
	513: {"Message Too Large", "RFC 3261", "registered"},
	555: {"Push Notification Service Not Supported", "RFC 8599", "registered"},
	580: {"Precondition Failure", "RFC 3312", "registered"},
	600: {"Busy Everywhere", "RFC 3261", "registered"},
	603: {"Decline", "RFC 3261", "registered"},
	604: {"Does Not Exist Anywhere", "RFC 3261", "registered"},
	606: {"Not Acceptable", "RFC 3261", "registered"},
	607: {"Unwanted", "RFC 8197", "registered"},
	608: {"Rejected", "RFC 8688", "registered"},
}

// texts is registry flattened into an array indexed by code-MinCode, filled
// once at package load, so that [Text] is a bounds check and a load.
var texts = func() (t [MaxCode - MinCode + 1]string) {
	for i := range t {
		t[i] = UnassignedText
	}
	for code, e := range registry {
		t[code-MinCode] = e.Reason
	}
	return t
}()

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "6xx"}

// Valid reports whether code is a status code RFC 3261 §7.2 allows:
// 100 <= code <= 699.
func Valid(code int) bool { return code >= MinCode && code <= MaxCode }

// Text returns the canonical reason phrase of a status code: the registry
// text for a registered code (e.g. Text(486) == "Busy Here"), [UnassignedText]
// for a code in 100..699 that the registry does not list, and "" for a code
// outside 100..699. It does not allocate.
func Text(code int) string {
	if !Valid(code) {
		return ""
	}
	return texts[code-MinCode]
}

// Class returns the response class of a status code as used in label values,
// "1xx" to "6xx" (RFC 3261 §7.2: provisional, success, redirection,
// client error, server error, global failure), or "" for a code outside
// 100..699. It does not allocate.
func Class(code int) string {
	if !Valid(code) {
		return ""
	}
	return classes[code/100-1]
}

// Lookup returns the registry entry of code and whether the registry lists
// it.
func Lookup(code int) (Entry, bool) {
	e, ok := registry[code]
	return e, ok
}

// Codes returns every code the registry lists, in ascending order. The
// caller owns the returned slice.
func Codes() []int {
	codes := make([]int, 0, len(registry))
	for code := MinCode; code <= MaxCode; code++ {
		if _, ok := registry[code]; ok {
			codes = append(codes, code)
		}
	}
	return codes
}
