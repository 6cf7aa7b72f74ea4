"""Deliver built messages: SMTP (aiosmtplib) or an outbox folder. (owned by the delivery helper)"""
