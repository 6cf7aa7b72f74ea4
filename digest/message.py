"""Build the MIME message for a rendered digest. (owned by the rendering helper)

    def make_message_id(from_email: str) -> str
    def build_message(rendered, *, from_addr, to_addr, to_name, message_id, date,
                      unsubscribe_mailto, unsubscribe_url) -> email.message.EmailMessage
"""
