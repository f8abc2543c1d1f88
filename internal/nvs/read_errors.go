package nvs

import "strconv"

// DeviceError is an error code of ESP-IDF's NVS library (an esp_err_t), as
// the library would return it for the same image and operation. Reading and
// editing report the device's outcome with these codes, so a caller can say
// exactly what the device would say (for example "ESP_ERR_NVS_NOT_FOUND" for
// a string whose data CRC is wrong).
//
// Use errors.Is(err, DeviceNotFound) and the like to test for a code.
type DeviceError int

// Codes of ESP-IDF's NVS library that the reader and the editor report.
const (
	DeviceFail            DeviceError = -1     // ESP_FAIL (a failed internal consistency check)
	DeviceNoMem           DeviceError = 0x101  // ESP_ERR_NO_MEM
	DeviceInvalidArg      DeviceError = 0x102  // ESP_ERR_INVALID_ARG
	DeviceNotAllowed      DeviceError = 0x10D  // ESP_ERR_NOT_ALLOWED (write to a read-only partition)
	DeviceNotInitialized  DeviceError = 0x1101 // ESP_ERR_NVS_NOT_INITIALIZED
	DeviceNotFound        DeviceError = 0x1102 // ESP_ERR_NVS_NOT_FOUND
	DeviceTypeMismatch    DeviceError = 0x1103 // ESP_ERR_NVS_TYPE_MISMATCH
	DeviceNotEnoughSpace  DeviceError = 0x1105 // ESP_ERR_NVS_NOT_ENOUGH_SPACE
	DeviceInvalidName     DeviceError = 0x1106 // ESP_ERR_NVS_INVALID_NAME
	DeviceRemoveFailed    DeviceError = 0x1108 // ESP_ERR_NVS_REMOVE_FAILED
	DeviceKeyTooLong      DeviceError = 0x1109 // ESP_ERR_NVS_KEY_TOO_LONG
	DevicePageFull        DeviceError = 0x110A // ESP_ERR_NVS_PAGE_FULL
	DeviceInvalidState    DeviceError = 0x110B // ESP_ERR_NVS_INVALID_STATE
	DeviceInvalidLength   DeviceError = 0x110C // ESP_ERR_NVS_INVALID_LENGTH
	DeviceNoFreePages     DeviceError = 0x110D // ESP_ERR_NVS_NO_FREE_PAGES
	DeviceValueTooLong    DeviceError = 0x110E // ESP_ERR_NVS_VALUE_TOO_LONG
	DeviceNewVersionFound DeviceError = 0x1110 // ESP_ERR_NVS_NEW_VERSION_FOUND
	DeviceXTSDecrFailed   DeviceError = 0x1112 // ESP_ERR_NVS_XTS_DECR_FAILED
	DeviceContentDiffers  DeviceError = 0x1118 // ESP_ERR_NVS_CONTENT_DIFFERS (internal: value differs)

	// devOK is ESP_OK; it is never returned as an error.
	devOK DeviceError = 0
)

var deviceErrorNames = map[DeviceError]string{
	DeviceFail:            "ESP_FAIL",
	DeviceNoMem:           "ESP_ERR_NO_MEM",
	DeviceInvalidArg:      "ESP_ERR_INVALID_ARG",
	DeviceNotAllowed:      "ESP_ERR_NOT_ALLOWED",
	DeviceNotInitialized:  "ESP_ERR_NVS_NOT_INITIALIZED",
	DeviceNotFound:        "ESP_ERR_NVS_NOT_FOUND",
	DeviceTypeMismatch:    "ESP_ERR_NVS_TYPE_MISMATCH",
	DeviceNotEnoughSpace:  "ESP_ERR_NVS_NOT_ENOUGH_SPACE",
	DeviceInvalidName:     "ESP_ERR_NVS_INVALID_NAME",
	DeviceRemoveFailed:    "ESP_ERR_NVS_REMOVE_FAILED",
	DeviceKeyTooLong:      "ESP_ERR_NVS_KEY_TOO_LONG",
	DevicePageFull:        "ESP_ERR_NVS_PAGE_FULL",
	DeviceInvalidState:    "ESP_ERR_NVS_INVALID_STATE",
	DeviceInvalidLength:   "ESP_ERR_NVS_INVALID_LENGTH",
	DeviceNoFreePages:     "ESP_ERR_NVS_NO_FREE_PAGES",
	DeviceValueTooLong:    "ESP_ERR_NVS_VALUE_TOO_LONG",
	DeviceNewVersionFound: "ESP_ERR_NVS_NEW_VERSION_FOUND",
	DeviceXTSDecrFailed:   "ESP_ERR_NVS_XTS_DECR_FAILED",
	DeviceContentDiffers:  "ESP_ERR_NVS_CONTENT_DIFFERS",
	devOK:                 "ESP_OK",
}

// Name returns the ESP-IDF name of the code, such as "ESP_ERR_NVS_NOT_FOUND".
func (e DeviceError) Name() string {
	if n, ok := deviceErrorNames[e]; ok {
		return n
	}
	return "ESP_ERR_0x" + strconv.FormatInt(int64(e), 16)
}

// Error returns the ESP-IDF name of the code and its value, such as
// "ESP_ERR_NVS_NOT_FOUND (0x1102)".
func (e DeviceError) Error() string {
	if e < 0 {
		return e.Name() + " (" + strconv.Itoa(int(e)) + ")"
	}
	return e.Name() + " (0x" + strconv.FormatInt(int64(e), 16) + ")"
}
