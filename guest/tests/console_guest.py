"""The console side the QEMU test scripts share: commands typed to the test kernel under pexpect."""


class ConsoleGuest:
    """A test kernel on a pexpect child (`self.child`), taking console commands."""

    def cmd(self, text, pattern, timeout=60):
        """Sends a command; returns the regex match of its output line (None on a mismatch)."""
        self.child.send(text + "\r")
        self.child.expect_exact(text)
        i = self.child.expect([pattern + r"\r*\n> ", r"(ERROR [^\r\n]*)\r*\n> ", r"([A-Z]+ [^\r\n]*)\r*\n> "],
                              timeout=timeout)
        if i != 0:
            print("     got: %s" % self.child.match.group(1))
            return None
        return self.child.match
