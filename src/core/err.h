/*
 * One error convention for the whole tree: functions that can fail return an int,
 * 0 (or a non-negative count) on success and a negative WG_E* code on failure.
 * Where a function takes a callback and fails, the callback never fires.
 * Libraries below the command line return codes; the layer that decides logs.
 */
#ifndef WG_CORE_ERR_H
#define WG_CORE_ERR_H

enum wg_err {
	WG_OK = 0,
	WG_EINVAL = -1,     /* malformed input */
	WG_ETRUNC = -2,     /* input ended too early */
	WG_ELIMIT = -3,     /* input exceeds a configured limit */
	WG_ECRYPTO = -4,    /* authentication or signature check failed */
	WG_ECERT = -5,      /* server certificate chain rejected */
	WG_EIO = -6,        /* socket or file error */
	WG_ETIMEDOUT = -7,  /* a deadline passed */
	WG_ECLOSED = -8,    /* peer closed */
	WG_ESTATE = -9,     /* call not allowed in the current state */
	WG_ENOTFOUND = -10, /* lookup failed */
	WG_EPROTO = -11,    /* peer violated the protocol */
	WG_EZLIB = -12,     /* compressed frame would not inflate */
	WG_ENOTSUP = -13,   /* not supported here */
};

/* A short, static, human description of an error code. */
const char *wg_strerror(int err);

#endif
