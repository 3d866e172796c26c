/*
 * DESIGN: H.264 for thin links (docs/serve.md), with openh264 (BSD; x264 would make okvm GPL).
 *
 * One encoder per H.264 setting, driven by a stream variant's thread (variant.c): the device's
 * MJPEG frame is decoded straight to YUV planes by libjpeg-turbo, its chroma brought to 4:2:0
 * here (the MS2109 sends 4:2:2: two rows averaged into one, no colour conversion), and encoded
 * with low-delay settings: screen-content mode (the target is a desktop), constrained baseline
 * (no B-frames, CAVLC: every browser's and ffmpeg's decoder), one slice, one reference frame,
 * constant SPS/PPS ids, an IDR only every H264_IDR_PERIOD_S seconds or when a new viewer asks for
 * one. Each encoded picture is one access unit in Annex-B form (start codes, SPS + PPS before
 * every IDR), so a viewer can start at any IDR. The SPS says full range, BT.601 matrix, as the
 * JPEGs are.
 *
 * The encoder may instead be a V4L2 memory-to-memory one (h264-v4l2.c: a Raspberry Pi's
 * bcm2835-codec), chosen by [serve] h264_encoder: `auto` (the first /dev/videoN that is a
 * stateful H.264 encoder, else openh264), `openh264`, `v4l2` or a path. This file decides and
 * logs: a device that refuses to open or to take the format, vanishes (ENODEV) or keeps a
 * picture longer than 1 s is named in one line, and that stream goes on with openh264 from the
 * same picture on, as an IDR with SPS + PPS, so its viewers stay and decode on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <wels/codec_api.h>

#include "okvm/log.h"
#include "lib/xalloc.h"
#include "serve/internal.h"

#define H264_IDR_PERIOD_S 30

struct h264_enc {
	ISVCEncoder *enc;
	bool auto_hw;     /* look for a V4L2 encoder at the first picture (auto, v4l2) */
	char hw_path[64]; /* the V4L2 encoder to use; "" once it failed, or none */
	struct h264_v4l2 *hw;
	char name[80]; /* "openh264", "v4l2:/dev/video11" */
	int w, h, bitrate_kbps;
	float fps;
	uint8_t *i420;
	size_t i420_cap;
	uint8_t *au;
	size_t au_cap;
};

struct h264_enc *
h264_enc_new(const char *choice)
{
	struct h264_enc *e = xcalloc(1, sizeof(struct h264_enc));
	/* The devices are looked at on the variant's thread, not here (the service thread). */
	e->auto_hw = !choice || !*choice || !strcmp(choice, "auto") || !strcmp(choice, "v4l2");
	if (choice && choice[0] == '/')
		snprintf(e->hw_path, sizeof(e->hw_path), "%s", choice);
	snprintf(e->name, sizeof(e->name), "%s%s", e->hw_path[0] ? "v4l2:" : "openh264",
		 e->hw_path);
	return e;
}

/* auto: the first V4L2 encoder, at the first picture. */
static void
find_hw(struct h264_enc *e)
{
	e->auto_hw = false;
	if (h264_v4l2_find(e->hw_path, sizeof(e->hw_path))) {
		okvm_log(OKVM_LOG_INFO, "serve: no V4L2 H.264 encoder (/dev/video0-63): openh264");
		return;
	}
	snprintf(e->name, sizeof(e->name), "v4l2:%s", e->hw_path);
}

const char *
h264_enc_name(const struct h264_enc *e)
{
	return e->name;
}

int
h264_encoder_check(const char *choice)
{
	char path[64], card[40], why[160];
	if (!choice || !strcmp(choice, "auto") || !strcmp(choice, "openh264"))
		return 0;
	if (!strcmp(choice, "v4l2")) {
		if (!h264_v4l2_find(path, sizeof(path)))
			return 0;
		okvm_log(OKVM_LOG_ERROR,
			 "serve: h264_encoder = v4l2, but no /dev/video0-63 is a V4L2 "
			 "memory-to-memory H.264 encoder; set h264_encoder = auto or openh264");
		return -ENODEV;
	}
	int rc = h264_v4l2_probe(choice, card, sizeof(card), why, sizeof(why));
	/* Busy is for now (another program has the codec): the streams try it when they start. */
	if (!rc || rc == -EBUSY)
		return 0;
	okvm_log(OKVM_LOG_ERROR,
		 "serve: h264_encoder = %s: %s; set h264_encoder = auto or openh264", choice, why);
	return -ENODEV;
}

static void
close_encoder(struct h264_enc *e)
{
	if (!e->enc)
		return;
	(*e->enc)->Uninitialize(e->enc);
	WelsDestroySVCEncoder(e->enc);
	e->enc = NULL;
}

void
h264_enc_free(struct h264_enc *e)
{
	if (!e)
		return;
	close_encoder(e);
	h264_v4l2_free(e->hw);
	free(e->i420);
	free(e->au);
	free(e);
}

static int
open_encoder(struct h264_enc *e, int w, int h, float fps, int kbps)
{
	close_encoder(e);
	if (WelsCreateSVCEncoder(&e->enc) || !e->enc)
		return -ENOMEM;
	SEncParamExt p;
	(*e->enc)->GetDefaultParams(e->enc, &p);
	p.iUsageType = SCREEN_CONTENT_REAL_TIME;
	p.iPicWidth = w;
	p.iPicHeight = h;
	p.iTargetBitrate = kbps * 1000;
	p.iMaxBitrate = kbps * 2000;
	p.iRCMode = RC_BITRATE_MODE;
	p.fMaxFrameRate = fps;
	p.iTemporalLayerNum = 1;
	p.iSpatialLayerNum = 1;
	p.uiIntraPeriod = (unsigned)(fps * H264_IDR_PERIOD_S);
	p.iNumRefFrame = 1;
	p.eSpsPpsIdStrategy = CONSTANT_ID;
	p.bPrefixNalAddingCtrl = false;
	p.iEntropyCodingModeFlag = 0;
	p.bEnableFrameSkip = false;
	p.iMultipleThreadIdc = 1;
	p.bEnableDenoise = false;
	p.bEnableBackgroundDetection = true;
	p.bEnableAdaptiveQuant = true;
	p.bEnableSceneChangeDetect = true;
	p.bEnableLongTermReference = false;
	SSpatialLayerConfig *l = &p.sSpatialLayers[0];
	l->iVideoWidth = w;
	l->iVideoHeight = h;
	l->fFrameRate = fps;
	l->iSpatialBitrate = p.iTargetBitrate;
	l->iMaxSpatialBitrate = p.iMaxBitrate;
	l->uiProfileIdc = PRO_BASELINE;
	l->sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
	/* The device's JPEGs are JFIF: full-range YCbCr with BT.601 coefficients, sRGB. Say so in
	 * the SPS, or decoders take it as limited range (16-235) and show it washed out. */
	l->bVideoSignalTypePresent = true;
	l->uiVideoFormat = VF_UNDEF;
	l->bFullRange = true;
	l->bColorDescriptionPresent = true;
	l->uiColorPrimaries = CP_BT709;
	l->uiTransferCharacteristics = TRC_IEC61966_2_1;
	l->uiColorMatrix = CM_SMPTE170M;
	int quiet = WELS_LOG_QUIET;
	(*e->enc)->SetOption(e->enc, ENCODER_OPTION_TRACE_LEVEL, &quiet);
	if ((*e->enc)->InitializeExt(e->enc, &p) != 0) {
		WelsDestroySVCEncoder(e->enc);
		e->enc = NULL;
		okvm_log(OKVM_LOG_ERROR, "serve: openh264 refused %dx%d at %.0f fps, %d kbit/s", w,
			 h, fps, kbps);
		return -EINVAL;
	}
	int fmt = videoFormatI420;
	(*e->enc)->SetOption(e->enc, ENCODER_OPTION_DATAFORMAT, &fmt);
	e->w = w;
	e->h = h;
	e->fps = fps;
	e->bitrate_kbps = kbps;
	snprintf(e->name, sizeof(e->name), "openh264");
	okvm_log(OKVM_LOG_INFO, "serve: H.264 encoder openh264 %dx%d, %.0f fps, %d kbit/s", w, h,
		 fps, kbps);
	return 0;
}

/* The V4L2 encoder gave up: say which and why, and go on with openh264 (a fresh IDR). */
static void
hw_failed(struct h264_enc *e, const char *what, const char *why)
{
	okvm_log(OKVM_LOG_WARN, "serve: H.264 encoder %s %s: %s; this stream goes on with openh264",
		 e->hw_path, what, why);
	h264_v4l2_free(e->hw);
	e->hw = NULL;
	e->hw_path[0] = 0;
	e->w = e->h = 0;
}

/* The picture in e->i420 through the V4L2 encoder. -EAGAIN: it failed (logged), use openh264. */
static int
hw_frame(struct h264_enc *e, int w, int h, float fps, int kbps, bool changed, bool force_idr,
	 uint64_t ts_us, const uint8_t **out, size_t *len, bool *idr)
{
	char why[160] = "";
	if (!e->hw || changed) {
		h264_v4l2_free(e->hw);
		e->hw = NULL;
		if (h264_v4l2_open(&e->hw, e->hw_path, w, h, fps, kbps, why, sizeof(why))) {
			hw_failed(e, "refused", why);
			return -EAGAIN;
		}
		e->w = w;
		e->h = h;
		e->fps = fps;
		e->bitrate_kbps = kbps;
		force_idr = true;
		okvm_log(OKVM_LOG_INFO, "serve: H.264 encoder %s %dx%d, %.0f fps, %d kbit/s",
			 e->name, w, h, fps, kbps);
	}
	if (h264_v4l2_encode(e->hw, e->i420, force_idr, ts_us, out, len, idr, why, sizeof(why))) {
		hw_failed(e, "failed", why);
		return -EAGAIN;
	}
	return 0;
}

/* The decoder's planes (subsampling sub) to I420 in e->i420. -ENOTSUP for 4:4:0 and 4:1:1. */
static int
to_i420(struct h264_enc *e, const uint8_t *yuv, int w, int h, int sub)
{
	int cw = (w + 1) / 2, ch = (h + 1) / 2;
	size_t need = (size_t)w * (size_t)h + 2 * (size_t)cw * (size_t)ch;
	if (need > e->i420_cap) {
		free(e->i420);
		e->i420 = xmalloc(need);
		e->i420_cap = need;
	}
	uint8_t *y = e->i420, *u = y + (size_t)w * h, *v = u + (size_t)cw * ch;
	memcpy(y, yuv, (size_t)w * (size_t)h);
	if (sub == TJSAMP_GRAY) {
		memset(u, 128, 2 * (size_t)cw * (size_t)ch);
		return 0;
	}
	int sw = tjPlaneWidth(1, w, sub), sh = tjPlaneHeight(1, h, sub);
	const uint8_t *su = yuv + tjPlaneSizeYUV(0, w, 0, h, sub);
	const uint8_t *sv = su + tjPlaneSizeYUV(1, w, 0, h, sub);
	const uint8_t *src[2] = { su, sv };
	uint8_t *dst[2] = { u, v };
	for (int k = 0; k < 2; k++) {
		const uint8_t *s = src[k];
		uint8_t *d = dst[k];
		if (sub == TJSAMP_420) {
			for (int r = 0; r < ch; r++)
				memcpy(d + (size_t)r * cw, s + (size_t)r * sw, (size_t)cw);
		} else if (sub == TJSAMP_422) { /* cw x h: average row pairs */
			for (int r = 0; r < ch; r++) {
				const uint8_t *a = s + (size_t)(2 * r) * sw;
				const uint8_t *b = 2 * r + 1 < sh ? a + sw : a;
				for (int x = 0; x < cw; x++)
					d[(size_t)r * cw + x] = (uint8_t)((a[x] + b[x] + 1) / 2);
			}
		} else if (sub == TJSAMP_444) { /* w x h: average 2x2 */
			for (int r = 0; r < ch; r++) {
				const uint8_t *a = s + (size_t)(2 * r) * sw;
				const uint8_t *b = 2 * r + 1 < sh ? a + sw : a;
				for (int x = 0; x < cw; x++) {
					int x0 = 2 * x, x1 = 2 * x + 1 < sw ? 2 * x + 1 : 2 * x;
					d[(size_t)r * cw + x] =
						(uint8_t)((a[x0] + a[x1] + b[x0] + b[x1] + 2) / 4);
				}
			}
		} else {
			return -ENOTSUP;
		}
	}
	return 0;
}

int
h264_enc_frame(struct h264_enc *e, const uint8_t *yuv, int w, int h, int sub, float fps,
	       int bitrate_kbps, bool force_idr, uint64_t ts_us, const uint8_t **out, size_t *len,
	       bool *idr)
{
	*len = 0;
	*idr = false;
	w &= ~1; /* 4:2:0 wants even sizes; the odd last column/row is dropped */
	h &= ~1;
	if (w < 16 || h < 16)
		return -EINVAL;
	bool changed = e->w != w || e->h != h || e->bitrate_kbps != bitrate_kbps ||
		       e->fps + 0.5f < fps || e->fps > fps + 0.5f;
	int rc = to_i420(e, yuv, w, h, sub);
	if (rc)
		return rc;
	if (e->auto_hw)
		find_hw(e);
	if (e->hw_path[0]) {
		rc = hw_frame(e, w, h, fps, bitrate_kbps, changed, force_idr, ts_us, out, len, idr);
		if (rc != -EAGAIN)
			return rc;
		changed = true; /* openh264 from this picture on, starting with an IDR */
	}
	if (!e->enc || changed) {
		rc = open_encoder(e, w, h, fps, bitrate_kbps);
		if (rc)
			return rc;
		force_idr = true;
	}
	if (force_idr)
		(*e->enc)->ForceIntraFrame(e->enc, true);
	int cw = (w + 1) / 2, ch = (h + 1) / 2;
	SSourcePicture pic = { 0 };
	pic.iColorFormat = videoFormatI420;
	pic.iPicWidth = w;
	pic.iPicHeight = h;
	pic.iStride[0] = w;
	pic.iStride[1] = pic.iStride[2] = cw;
	pic.pData[0] = e->i420;
	pic.pData[1] = e->i420 + (size_t)w * h;
	pic.pData[2] = pic.pData[1] + (size_t)cw * ch;
	pic.uiTimeStamp = (long long)(ts_us / 1000);
	SFrameBSInfo info;
	memset(&info, 0, sizeof(info));
	if ((*e->enc)->EncodeFrame(e->enc, &pic, &info) != cmResultSuccess)
		return -EIO;
	if (info.eFrameType == videoFrameTypeSkip || info.iFrameSizeInBytes <= 0)
		return 0;
	if ((size_t)info.iFrameSizeInBytes > e->au_cap) {
		free(e->au);
		e->au_cap = (size_t)info.iFrameSizeInBytes;
		e->au = xmalloc(e->au_cap);
	}
	size_t n = 0;
	for (int i = 0; i < info.iLayerNum; i++) {
		const SLayerBSInfo *l = &info.sLayerInfo[i];
		size_t ln = 0;
		for (int j = 0; j < l->iNalCount; j++)
			ln += (size_t)l->pNalLengthInByte[j];
		if (n + ln > e->au_cap)
			return -EIO;
		memcpy(e->au + n, l->pBsBuf, ln);
		n += ln;
	}
	*out = e->au;
	*len = n;
	*idr = info.eFrameType == videoFrameTypeIDR;
	return 0;
}

/* The NAL units of an Annex-B access unit: calls fn(type, nal, len) for each. */
static void
each_nal(const uint8_t *p, size_t n, void (*fn)(int, const uint8_t *, size_t, void *), void *ud)
{
	size_t i = 0, start = SIZE_MAX;
	while (i + 3 <= n) {
		if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) {
			if (start != SIZE_MAX) {
				size_t end = i;
				while (end > start && p[end - 1] == 0)
					end--;
				fn(p[start] & 0x1f, p + start, end - start, ud);
			}
			i += 3;
			start = i;
		} else {
			i++;
		}
	}
	if (start != SIZE_MAX && start < n)
		fn(p[start] & 0x1f, p + start, n - start, ud);
}

/* Looks at the first NAL units only (openh264 puts the SPS first), not the whole picture: this
 * runs per client and frame. */
bool
h264_au_is_idr(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 3 < n && i < 256; i++) {
		if (p[i] || p[i + 1] || p[i + 2] != 1)
			continue;
		int type = p[i + 3] & 0x1f;
		if (type == 5 || type == 7)
			return true;
		if (type != 6 && type != 9) /* not SEI or a delimiter: a slice of another kind */
			return false;
		i += 3;
	}
	return false;
}

struct codec_find {
	char *buf;
	size_t size;
	bool found;
};

static void
find_sps(int type, const uint8_t *nal, size_t len, void *ud)
{
	struct codec_find *c = ud;
	if (type != 7 || len < 4 || c->found)
		return;
	snprintf(c->buf, c->size, "avc1.%02X%02X%02X", nal[1], nal[2], nal[3]);
	c->found = true;
}

int
h264_codec_string(const uint8_t *p, size_t n, char *buf, size_t size)
{
	struct codec_find c = { buf, size, false };
	each_nal(p, n, find_sps, &c);
	return c.found ? 0 : -ENOENT;
}
