// The kverify executable: everything lives in the KVerifyCommands library so it can be tested.
import KVerifyCommands

await KVerify.runAsMain()
