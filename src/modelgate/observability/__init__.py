"""What the gateway tells its operators about the requests it served."""
