"""Local stand-ins for the cloud: CI (数据万象 content moderation) and the IM REST API, speaking their
documented wire formats. The tests talk to them, and `make run` starts them so that images, audio,
video, withdrawals and mutes work end to end with no account. Never part of a deployed function."""
