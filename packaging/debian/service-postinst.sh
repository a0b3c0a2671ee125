if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
	if [ -z "${DPKG_ROOT:-}" ] && command -v deb-systemd-helper >/dev/null 2>&1; then
		deb-systemd-helper unmask '@PKG@.service' >/dev/null || true
		if deb-systemd-helper --quiet was-enabled '@PKG@.service'; then
			deb-systemd-helper enable '@PKG@.service' >/dev/null || true
		else
			deb-systemd-helper update-state '@PKG@.service' >/dev/null || true
		fi
		if [ -d /run/systemd/system ]; then
			systemctl --system daemon-reload >/dev/null || true
			# Not started here: /etc/mistore/@CONF@ needs this node's settings first;
			# then: systemctl enable --now @PKG@
			if systemctl --quiet is-active '@PKG@.service'; then
				deb-systemd-invoke restart '@PKG@.service' >/dev/null || true
			fi
		fi
	fi
fi
