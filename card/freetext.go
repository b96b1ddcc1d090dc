package card

// Free text (a postal code, a name, a metadata value) and identifiers a
// caller chooses (an idempotency key, a transaction id, a webhook URL) must
// never carry a card number into storage or logs by accident: a caller who
// types the card into the wrong field would otherwise have it stored in
// clear, copied into webhooks and returned by GET.

// MinPANRun and MaxPANRun bound the digit runs ContainsPANRun looks at: the
// shortest and longest card numbers in use.
const (
	MinPANRun = 13
	MaxPANRun = 19
)

// maxSeparators is how many separator characters may stand between two
// groups of digits of one run ("4111 1111", "4111-1111", "4111 - 1111").
const maxSeparators = 3

// minHexID is the length from which a hexadecimal word with a letter is an
// id (a hash, a random id, a request id) rather than text: its digits are
// random, not typed, and are not searched.
const minHexID = 16

// ContainsPANRun reports whether s holds what looks like a card number: a
// run of 13 to 19 digits that starts like a payment card (2221–2720, or 3,
// 4, 5 or 6: Mastercard, Amex, JCB, Diners, Visa, Discover, UnionPay) and
// passes the Luhn check. Digits are ASCII or full-width; a run may be
// written in one piece or in groups separated by up to three spaces, tabs,
// dashes, dots, slashes or underscores (or their full-width forms). Within a
// run, consecutive groups laid out as cards are written count ("4111 1111
// 1111 1111 123", a card followed by its CVV, is found; a counter and a
// timestamp joined by a dash are not a card's layout), and so does a card
// number followed by more digits in the same group
// ("41111111111111111225123", card, expiry and CVV typed together) when it
// is a whole number of a supported brand.
//
// Ids are not searched: a canonical UUID (Twilio's transaction ids) and a
// hexadecimal word of 16 or more characters with a letter in it. Neither a
// timestamp (1…, 20…) nor a snowflake id starts like a card. It does no I/O,
// allocates nothing whatever the input, and never returns the digits it
// found.
func ContainsPANRun(s string) bool {
	var digitsBuf [128]byte
	var endsBuf [64]int
	i := 0
	for i < len(s) {
		if wordStart(s, i) {
			if n := idLength(s, i); n > 0 {
				i += n
				continue
			}
		}
		if _, w := digitAt(s, i); w == 0 {
			i++
			continue
		}
		r := digitRun{digits: digitsBuf[:0], ends: endsBuf[:0]}
		for {
			stored := 0
			for i < len(s) {
				d, w := digitAt(s, i)
				if w == 0 {
					break
				}
				if stored <= MaxPANRun {
					r.digits = append(r.digits, d)
					stored++
				}
				i += w
			}
			r.ends = append(r.ends, len(r.digits))
			if len(r.digits) > len(digitsBuf)-MaxPANRun-1 || len(r.ends) > len(endsBuf)-MaxPANRun-1 {
				if r.hasPAN() {
					return true
				}
				r.keepIncomplete()
			}
			j, seps := i, 0
			for j < len(s) && seps < maxSeparators {
				w := separatorAt(s, j)
				if w == 0 {
					break
				}
				j += w
				seps++
			}
			if seps == 0 || j >= len(s) {
				break
			}
			if _, w := digitAt(s, j); w == 0 || idLength(s, j) > 0 {
				break
			}
			i = j
		}
		if r.hasPAN() {
			return true
		}
	}
	return false
}

// digitRun is the digits of (the end of) one run, as ASCII whatever their
// form in the text, and where each of its groups ends; the first digit
// starts a group. A group keeps at most MaxPANRun+1 digits: no candidate
// reaches further, and the one more says the group goes on.
type digitRun struct {
	digits []byte
	ends   []int
}

// hasPAN checks, from the start of every group, each 13 to 19 digits that
// follow. Within one group, digits that end where it ends are a card when
// they pass the Luhn check, and digits followed by more digits only when
// they are a whole card number of a supported brand, since any long number
// has some Luhn-valid prefix. Over several groups, whole groups are a card
// when they pass the Luhn check and are laid out as cards are written and
// read out (cardLayout): a counter and a timestamp joined by a dash are not.
func (r *digitRun) hasPAN() bool {
	d := r.digits
	start := 0
	for k := range r.ends {
		if k > 0 {
			start = r.ends[k-1]
		}
		if len(d)-start < MinPANRun {
			return false // later groups start later still
		}
		if !startsLikeCard(d[start:]) {
			continue
		}
		g := k // the group the candidate ends in
		inner := r.ends[k]-start >= minCardGroup && r.ends[k]-start <= maxCardGroup
		for n := MinPANRun; n <= MaxPANRun && start+n <= len(d); n++ {
			end := start + n
			for r.ends[g] < end {
				if g > k {
					size := r.ends[g] - r.ends[g-1]
					inner = inner && size >= minCardGroup && size <= maxCardGroup
				}
				g++
			}
			candidate := d[start:end]
			switch {
			case r.ends[g] != end && g == k:
				if _, err := ParsePAN(string(candidate)); err == nil {
					return true
				}
			case r.ends[g] != end:
			case (g == k || inner && r.ends[g]-r.ends[g-1] <= maxCardGroup) && luhn(candidate):
				return true
			}
		}
	}
	return false
}

// A card written in groups has groups of 3 to 6 digits but for the last,
// which may be shorter (4-4-4-4, Amex's 4-6-5, Diners' 4-6-4, 4-4-4-4-3,
// 4-4-4-1).
const (
	minCardGroup = 3
	maxCardGroup = 6
)

// keepIncomplete drops the groups whose candidates hasPAN has all seen,
// keeping those that start less than MaxPANRun digits before the end, so
// that a long run is checked in a fixed buffer.
func (r *digitRun) keepIncomplete() {
	start, k := 0, 0
	for ; k < len(r.ends); k++ {
		if k > 0 {
			start = r.ends[k-1]
		}
		if len(r.digits)-start < MaxPANRun {
			break
		}
	}
	if k == len(r.ends) {
		r.digits, r.ends = r.digits[:0], r.ends[:0]
		return
	}
	r.digits = r.digits[:copy(r.digits, r.digits[start:])]
	n := copy(r.ends, r.ends[k:])
	r.ends = r.ends[:n]
	for i := range r.ends {
		r.ends[i] -= start
	}
}

// startsLikeCard reports whether digits begin like a payment card number:
// Mastercard's 2221–2720, or a major industry identifier of 3 to 6.
func startsLikeCard(d []byte) bool {
	switch {
	case d[0] >= '3' && d[0] <= '6':
		return true
	case d[0] == '2' && len(d) >= 4:
		p := string(d[:4])
		return p >= "2221" && p <= "2720"
	}
	return false
}

// digitAt returns the digit at s[i] as an ASCII digit, and its width in
// bytes: 1 for ASCII, 3 for a full-width digit (U+FF10–U+FF19), 0 for none.
func digitAt(s string, i int) (byte, int) {
	c := s[i]
	if c >= '0' && c <= '9' {
		return c, 1
	}
	if c == 0xEF && i+2 < len(s) && s[i+1] == 0xBC && s[i+2] >= 0x90 && s[i+2] <= 0x99 {
		return '0' + s[i+2] - 0x90, 3
	}
	return 0, 0
}

// separatorAt returns the width of the separator at s[i], or 0: a space,
// tab, dash, dot, slash or underscore, the no-break and ideographic spaces,
// and the full-width dash, dot, slash and underscore.
func separatorAt(s string, i int) int {
	switch s[i] {
	case ' ', '\t', '-', '.', '/', '_':
		return 1
	case 0xC2: // U+00A0 no-break space
		if i+1 < len(s) && s[i+1] == 0xA0 {
			return 2
		}
	case 0xE3: // U+3000 ideographic space
		if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x80 {
			return 3
		}
	case 0xEF: // U+FF0D, U+FF0E, U+FF0F, U+FF3F
		if i+2 < len(s) && s[i+1] == 0xBC && (s[i+2] == 0x8D || s[i+2] == 0x8E || s[i+2] == 0x8F || s[i+2] == 0xBF) {
			return 3
		}
	}
	return 0
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// wordStart reports whether an ASCII word (letters and digits) starts at s[i].
func wordStart(s string, i int) bool { return isAlnum(s[i]) && (i == 0 || !isAlnum(s[i-1])) }

// idLength returns the length of the id that starts at s[i] (at the start
// of a word), or 0: a canonical UUID (8-4-4-4-12 hexadecimal digits), or a
// hexadecimal word of at least minHexID characters with a letter in it.
func idLength(s string, i int) int {
	if n := uuidLength(s, i); n > 0 {
		return n
	}
	j, letter := i, false
	for j < len(s) && isAlnum(s[j]) {
		if !isHex(s[j]) {
			return 0
		}
		letter = letter || s[j] > '9'
		j++
	}
	if letter && j-i >= minHexID {
		return j - i
	}
	return 0
}

// uuidLength is 36 when a UUID, not followed by more of its word, starts at s[i].
func uuidLength(s string, i int) int {
	const n = 36
	if len(s)-i < n || (len(s)-i > n && isAlnum(s[i+n])) {
		return 0
	}
	for k := 0; k < n; k++ {
		c := s[i+k]
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return 0
			}
		} else if !isHex(c) {
			return 0
		}
	}
	return n
}
