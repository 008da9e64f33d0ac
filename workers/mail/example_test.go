package mail_test

import (
	"fmt"
	netmail "net/mail"
	"time"

	"github.com/google/uuid"

	"github.com/subs-engine/subs/workers/mail"
)

// A flow fills a message from its kind's templates, then sends it; the
// Message-ID follows from the causing event, so a resend after a crash
// carries the same one.
func ExampleTemplates_Fill() {
	templates, err := mail.NewTemplates()
	if err != nil {
		panic(err)
	}
	m, err := templates.Fill(mail.Message{
		CausationID: uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057"), // the reset-requested event
		Kind:        "password_reset",
		From:        netmail.Address{Name: "Subs", Address: "no-reply@subs.example"},
		To:          netmail.Address{Name: "Ada Lovelace", Address: "ada@example.com"},
		Date:        time.Date(2027, 3, 1, 9, 30, 0, 0, time.UTC), // the engine clock's now
	}, map[string]any{"Name": "Ada", "ResetURL": "https://subs.example/reset#t", "ValidFor": "1 hour"})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Subject)
	fmt.Println(m.MessageID("subs.example"))
	// Output:
	// Reset your password
	// <01890a5d-ac96-774b-bcce-b302099a8057.password_reset@subs.example>
}
