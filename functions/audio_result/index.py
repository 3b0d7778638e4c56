"""SCF entry point of audio_result (handler ``index.main_handler``); the logic lives in imguard."""
from imguard.apps.audio_result import create_handler

_app = create_handler()  # once per warm instance: configuration errors stop the cold start


def main_handler(event, context):
    return _app(event, context)
