package card

// Free text (a postal code, a name, a metadata value) must never carry a card
// number into storage by accident: a caller who types the card into the wrong
// field would otherwise have it stored in clear, copied into webhooks and
// returned by GET.

// MinPANRun and MaxPANRun bound the digit runs ContainsPANRun looks at: the
// shortest and longest card numbers in use.
const (
	MinPANRun = 13
	MaxPANRun = 19
)

// maxSeparators is how many spaces or dashes may stand between two groups of
// digits of one run ("4111 1111", "4111-1111", "4111 - 1111").
const maxSeparators = 3

// ContainsPANRun reports whether s holds a Luhn-valid run of 13 to 19 ASCII
// digits, written in one piece or in groups separated by up to three spaces
// or dashes. Within a run of groups, any consecutive groups count
// ("4111 1111 1111 1111 123", a card followed by its CVV, is found); a group
// of more than 19 digits written in one piece is not a card and is not
// searched inside. It does no I/O and never returns the digits it found.
func ContainsPANRun(s string) bool {
	var groups [][2]int // [start, end) of each digit group of the current run
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		groups = groups[:0]
		for {
			start := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			groups = append(groups, [2]int{start, i})
			j := i
			for j < len(s) && j-i < maxSeparators && (s[j] == ' ' || s[j] == '-') {
				j++
			}
			if j == i || j >= len(s) || !isDigit(s[j]) {
				break
			}
			i = j
		}
		if runHasPAN(s, groups) {
			return true
		}
	}
	return false
}

// runHasPAN checks every sequence of consecutive groups whose digits number
// 13 to 19.
func runHasPAN(s string, groups [][2]int) bool {
	var buf [MaxPANRun]byte
	for first := range groups {
		n := 0
		for _, g := range groups[first:] {
			if n+g[1]-g[0] > MaxPANRun {
				break
			}
			n += copy(buf[n:], s[g[0]:g[1]])
			if n >= MinPANRun && Luhn(string(buf[:n])) {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
