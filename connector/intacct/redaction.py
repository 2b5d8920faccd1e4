import logging


class RedactingFilter(logging.Filter):
    def filter(self, record):
        return True
